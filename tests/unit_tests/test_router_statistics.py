"""ClusterRouter's fitted statistics: per-cluster means, shrinkage toward the pool, and the
expected score and cost of a model where it was not measured.

The geometry (12 queries on the unit vectors e1, e2, e3; models ``m-big``, ``m-mid``,
``m-small``) and its per-cluster table are in ``tests/hand_built_router.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hand_built_router import (
    BIG,
    MID,
    SMALL,
    cluster_of,
    fit_three_groups,
    one_cluster_router,
    record,
    three_group_data,
)

from langchain_avengers import CalibrationRecord, ClusterRouter
from langchain_avengers.records.format import Usage, load_records
from langchain_avengers.routing.embeddings import normalize_rows

# the hand-built geometry has 4 queries a cluster, below what fitting calls enough
pytestmark = pytest.mark.filterwarnings("ignore:.*calibration queries hold a median")


# ---------------------------------------------------------------- fitted statistics


def test_fit_learns_mean_score_and_mean_cost_per_cluster_and_model() -> None:
    router = fit_three_groups()
    c1, c2, c3 = (cluster_of(router, a) for a in range(3))
    assert sorted([c1, c2, c3]) == [0, 1, 2]
    np.testing.assert_allclose(np.abs(router.cluster_centers_).max(axis=1), 1.0, atol=1e-6)
    assert router.models_ == [BIG, MID, SMALL]
    np.testing.assert_array_equal(router.cluster_sizes_[[c1, c2, c3]], [4, 4, 4])

    expected_acc = [[1.0, 0.75, 0.5], [2 / 3, 1.0, 0.0], [1.0, 0.5, 0.25]]
    expected_cost = [[0.01, 0.003, 0.001], [0.02, 0.002, 0.001], [0.01, 0.005, 0.001]]
    np.testing.assert_allclose(router.accuracy_[[c1, c2, c3]], expected_acc)
    np.testing.assert_allclose(router.cost_[[c1, c2, c3]], expected_cost)
    np.testing.assert_array_equal(router.n_scored_, np.full((3, 3), 4))
    np.testing.assert_array_equal(router.n_costed_, np.full((3, 3), 4))
    np.testing.assert_allclose(router.global_accuracy_, [8 / 9, 9 / 12, 3 / 12])
    np.testing.assert_allclose(router.global_cost_, [0.16 / 12, 0.040 / 12, 0.001])
    assert router.n_features_in_ == 3
    assert router.n_samples_fit_ == 12


def test_shrinkage_pulls_cluster_means_toward_the_pool_mean() -> None:
    router = fit_three_groups(shrinkage=2.0)
    c1, c3 = cluster_of(router, 0), cluster_of(router, 2)
    # (sum + s * pool) / (count + s)
    assert router.accuracy_[c1, 2] == pytest.approx((2 + 2 * 3 / 12) / (4 + 2))
    assert router.cost_[c3, 1] == pytest.approx((0.020 + 2 * 0.040 / 12) / (4 + 2))
    assert router.accuracy_[c3, 0] == pytest.approx((4 + 2 * 8 / 9) / (4 + 2))


# ---------------------------------------------------------------- unmeasured scores and costs


def partly_measured_rows() -> list[CalibrationRecord]:
    """One cluster, 4 queries; m-small measured on q0 and q3 only.

    ==  =====  =====  =======  ===============================
    q   m-big  m-mid  m-small  USD m-big, m-mid, m-small
    ==  =====  =====  =======  ===============================
    q0  1      0      1        0.01, 0.001, 0.004
    q1  1      0      absent   0.02, 0.002, unknown
    q2  1      1      absent   0.02, 0.002, unknown
    q3  0      0      0        0.01, 0.001, 0.004
    ==  =====  =====  =======  ===============================
    """
    small = [1, None, None, 0]
    return [
        record(
            f"q{i}",
            {BIG: big, MID: mid, SMALL: small[i]},
            {BIG: 0.01 * size, MID: 0.001 * size, SMALL: None if small[i] is None else 0.004},
        )
        for i, (big, mid, size) in enumerate([(1, 0, 1), (1, 0, 2), (1, 1, 2), (0, 0, 1)])
    ]


def test_an_unmeasured_score_is_the_models_expected_score_there() -> None:
    # gap to the others' mean score where measured: big (1/2 + 1 + 0 + 0) / 4 = 3/8, mid
    # (-1 - 1 + 0 + 0) / 4 = -1/2 (the weakest), small (1/2 + 0) / 2 = 1/4. Small's prior:
    # (1/2 + 10 * -1/2) / 12 = -3/8; its expected gap: (1/2 + 10 * -3/8) / 12 = -13/48. The
    # others score 1/2 on q1 and 1 on q2, so small counts there as 11/48 and 35/48.
    with pytest.warns(
        UserWarning, match=r"m-small \(2 scored\) have a score on fewer than 10"
    ) as w:
        router = one_cluster_router(partly_measured_rows())
    # big and mid are scored on every query: plain means, however few the queries, so unnamed
    assert not [str(x.message) for x in w if BIG in str(x.message) or MID in str(x.message)]
    small = (1 + 11 / 48 + 35 / 48 + 0) / 4  # neither 1/4 (zeros) nor 1/2 (left out)
    assert router.accuracy_[0].tolist() == pytest.approx([3 / 4, 1 / 4, small])
    assert router.global_accuracy_.tolist() == pytest.approx([3 / 4, 1 / 4, small])
    assert router.n_scored_[0].tolist() == [4, 4, 2]


def test_an_unknown_cost_is_the_others_mean_cost_times_the_models_cost_ratio() -> None:
    # where small was measured (q0, q3), the others cost 0.0055 on average and small 0.004:
    # totals 0.011 and 0.008, raw ratio 8/11, shrunk toward 1 by one pseudo-query on the log
    # scale: (8/11) ** (2/3). On q1 and q2 the others cost 0.011, so small's mean is
    # (0.004 + 2 * 0.011 * (8/11) ** (2/3) + 0.004) / 4 (neither 0.002 with free answers nor
    # 0.004 with its two known costs alone)
    with pytest.warns(UserWarning, match="m-small"):
        router = one_cluster_router(partly_measured_rows())
    small = (0.008 + 2 * 0.011 * (8 / 11) ** (2 / 3)) / 4
    assert router.cost_[0].tolist() == pytest.approx([0.015, 0.0015, small])
    assert router.n_costed_[0].tolist() == [4, 4, 2]


def test_a_model_never_measured_in_a_cluster_gets_its_expected_statistics_there() -> None:
    # m-small is absent from e3. Its gaps to the others' mean score: e1 0, -1, -1/2, 0 and e2
    # -1, -1, -1/2, -5/6 (sum -29/6 over 8). The weakest in e3 is m-mid (-1/2 against m-big
    # alone), so its prior gap is (-29/6 + 10 * -1/2) / 18 = -59/108, and with no query of its
    # own in e3 that is its expected gap there. The others score 1/2, 1, 1/2, 1 on e3's
    # queries: m-small counts as 0, 49/108, 0, 49/108 (clipped at 0).
    rows, vectors = three_group_data()
    rows = [
        r
        if not r.query.startswith("g3")
        else record(r.query, {BIG: 1, MID: r.records[MID]}, {BIG: 0.01, MID: r.cost_of(MID)})
        for r in rows
    ]
    router = ClusterRouter(  # one partition: the statistics below are per cluster
        n_clusters=3,
        nearest_clusters=1,
        cost_scale="linear",
        scoring="minmax",
        cluster_scales=(1.0,),
        shrinkage=0.0,
    )
    with pytest.warns(UserWarning, match=r"m-small \(8 scored\) have a score on fewer than 10"):
        router.fit(rows, embeddings=vectors)
    c3 = cluster_of(router, 2)
    assert router.n_scored_[c3].tolist() == [4, 4, 0]
    assert router.accuracy_[c3].tolist() == pytest.approx([1.0, 0.5, 49 / 216])
    # cost: m-small's 0.008 against the others' 0.070 on its 8 queries (raw ratio 4/35, shrunk
    # to (4/35) ** (8/9) by one pseudo-query at ratio 1), times the others' mean on e3 (0.0075)
    expected = 0.0075 * (4 / 35) ** (8 / 9)
    assert router.cost_[c3].tolist() == pytest.approx([0.01, 0.005, expected])


def test_a_model_scored_on_one_query_does_not_take_over_routing(
    small_jsonl: Path, keyword_embeddings
) -> None:
    # the trial: a model scored 1 on one query (as cheap as the cheapest model there) took
    # every query at alpha >= 0.5, its one score standing for its accuracy everywhere
    first, *rest = load_records(small_jsonl)
    lucky = first.model_copy(
        update={
            "records": {**first.records, "acme/lucky": 1.0},
            "usages": {**first.usages, "acme/lucky": Usage(cost=first.cost_of("acme/tiny"))},
        }
    )
    router = ClusterRouter(n_clusters=4, nearest_clusters=2, embedder=keyword_embeddings)
    with pytest.warns(UserWarning, match=r"acme/lucky \(1 scored\) have a score on fewer than"):
        router.fit([lucky, *rest])
    queries = [first.query] + [r.query for r in rest]
    assert router.route_batch(queries, 0.5).count("acme/lucky") < len(queries) / 2
    for alpha in (0.8, 0.9, 1.0):
        assert "acme/lucky" not in router.route_batch(queries, alpha)


def test_fully_measured_statistics_are_the_raw_means() -> None:
    # filling only touches unmeasured cells: the paper's plain means otherwise
    rng = np.random.default_rng(3)
    scores, costs = rng.integers(0, 2, size=(40, 3)), rng.uniform(1e-4, 1e-2, size=(40, 3))
    models = (BIG, MID, SMALL)
    rows = [
        record(
            f"q{i}",
            dict(zip(models, map(float, s), strict=True)),
            dict(zip(models, map(float, c), strict=True)),
        )
        for i, (s, c) in enumerate(zip(scores, costs, strict=True))
    ]
    vectors = rng.normal(size=(40, 3))
    router = ClusterRouter(
        n_clusters=4, nearest_clusters=2, scoring="minmax", cluster_scales=(1.0,), shrinkage=0.0
    ).fit(rows, embeddings=vectors)
    labels = np.argmax(normalize_rows(vectors) @ router.cluster_centers_.T, axis=1)
    for k in range(4):
        np.testing.assert_allclose(router.accuracy_[k], scores[labels == k].mean(axis=0))
        np.testing.assert_allclose(router.cost_[k], costs[labels == k].mean(axis=0))
    np.testing.assert_allclose(router.global_accuracy_, scores.mean(axis=0))


def test_a_model_measured_once_at_no_cost_does_not_take_over_cheap_routing(
    small_jsonl: Path, keyword_embeddings
) -> None:
    # the trial: a model scored on one query at $0 took every route at alpha 0, its one free
    # answer standing for its cost everywhere (its accuracy was shrunk, its cost was not)
    first, *rest = load_records(small_jsonl)
    free = first.model_copy(
        update={
            "records": {**first.records, "acme/free": 0.0},
            "usages": {**first.usages, "acme/free": Usage(cost=0.0)},
        }
    )
    router = ClusterRouter(n_clusters=4, nearest_clusters=2, embedder=keyword_embeddings)
    with pytest.warns(UserWarning, match=r"acme/free \(1 scored\) have a score on fewer than"):
        router.fit([free, *rest])
    queries = [first.query] + [r.query for r in rest]
    for alpha in (0.0, 0.1):
        assert router.route_batch(queries, alpha).count("acme/free") <= 1
    # it counts as cheap (its ratio to the others a tenth of tiny's, shrunk toward 1), not free
    tiny, free_col = router.models_.index("acme/tiny"), router.models_.index("acme/free")
    assert router.global_cost_[free_col] > 2 * router.global_cost_[tiny]
