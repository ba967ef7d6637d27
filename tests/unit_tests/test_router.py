"""ClusterRouter: the paper's formula checked by hand on a geometry built by hand.

Most tests fit on 12 calibration queries whose embeddings are exactly the unit vectors e1, e2,
e3 (4 queries each), so k-means with k = 3 finds exactly those centroids and every statistic
and score below can be worked out on paper. Models, in column order: ``m-big`` (strong,
expensive), ``m-mid``, ``m-small`` (weak, cheap).

Per cluster (mean score, mean USD per query), every model measured on every query:

======  ===================  =====================  ==========================
cluster m-big                m-mid                  m-small
======  ===================  =====================  ==========================
e1      1, 0.01              0.75, 0.003            0.5, 0.001
e2      2/3, 0.02            1, 0.002               0, 0.001
e3      1, 0.01              0.5, 0.005             0.25, 0.001
======  ===================  =====================  ==========================

Unmeasured scores and costs are checked by hand on their own small data further down.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from langchain_avengers import (
    CalibrationRecord,
    CandidateScore,
    ClusterMatch,
    ClusterRouter,
    RecordsError,
    RoutingDecision,
)
from langchain_avengers.embeddings import normalize_rows
from langchain_avengers.records import Usage, load_records
from langchain_avengers.router import NORM_CACHE_SIZE, auto_n_clusters

# the hand-built geometry has 4 queries a cluster, below what fitting calls enough
pytestmark = pytest.mark.filterwarnings("ignore:.*calibration queries hold a median")

BIG, MID, SMALL = "m-big", "m-mid", "m-small"
E1, E2, E3 = np.eye(3)
PAPER = {"scoring": "minmax", "cluster_scales": (1.0,), "shrinkage": 0.0}
"""The paper's score on one k-means fit: what the hand-worked tables below check."""
QUERY_12 = np.array([1.0, 0.5, 0.2])  # nearest e1, then e2, then e3
SIMS_12 = np.array([1.0, 0.5, 0.2]) / math.sqrt(1.29)


def record(query: str, scores: dict, costs: dict) -> CalibrationRecord:
    return CalibrationRecord(
        query=query,
        records=scores,
        usages={m: {"cost": c} for m, c in costs.items() if c is not None},
    )


def three_group_data() -> tuple[list[CalibrationRecord], np.ndarray]:
    rows, vectors = [], []
    small_1 = [1, 0, 0, 1]
    mid_1, mid_cost_1 = [1, 1, 0, 1], [0.002, 0.004, 0.002, 0.004]
    for i in range(4):
        rows.append(
            record(
                f"g1-{i}",
                {BIG: True, MID: mid_1[i], SMALL: small_1[i]},
                {BIG: 0.01, MID: mid_cost_1[i], SMALL: 0.001},
            )
        )
        vectors.append(E1)
    big_2 = [1, 1, 0, 2 / 3]
    for i in range(4):
        rows.append(
            record(
                f"g2-{i}",
                {BIG: big_2[i], MID: 1, SMALL: False},
                {BIG: 0.02, MID: 0.002, SMALL: 0.001},
            )
        )
        vectors.append(E2)
    mid_3, mid_cost_3, small_3 = [0, 1, 0, 1], [0.004, 0.005, 0.006, 0.005], [0, 1, 0, 0]
    for i in range(4):
        rows.append(
            record(
                f"g3-{i}",
                {BIG: 1, MID: mid_3[i], SMALL: small_3[i]},
                {BIG: 0.01, MID: mid_cost_3[i], SMALL: 0.001},
            )
        )
        vectors.append(E3)
    return rows, np.array(vectors)


def fit_three_groups(**params: object) -> ClusterRouter:
    rows, vectors = three_group_data()
    params = {"n_clusters": 3, "top_p": 2, "cost_scale": "linear", **PAPER, **params}
    return ClusterRouter(**params).fit(rows, embeddings=vectors)


def cluster_of(router: ClusterRouter, axis: int) -> int:
    return int(np.argmax(router.cluster_centers_[:, axis]))


def scores_of(decision: RoutingDecision) -> dict[str, float]:
    return {c.model: c.score for c in decision.candidates}


# per-cluster x = alpha * acc~ + (1 - alpha) * (1 - cost~), worked out by hand
def linear_x(cluster: int, alpha: float) -> dict[str, float]:
    b = 1 - alpha
    return [
        {SMALL: b, MID: 0.5 * alpha + (7 / 9) * b, BIG: alpha},  # cost~ mid = 2/9
        {SMALL: b, MID: alpha + (18 / 19) * b, BIG: (2 / 3) * alpha},  # cost~ mid = 1/19
        {SMALL: b, MID: alpha / 3 + (5 / 9) * b, BIG: alpha},  # acc~ mid 1/3, cost~ 4/9
    ][cluster]


def log_x(cluster: int, alpha: float) -> dict[str, float]:
    b = 1 - alpha
    mid_cost = [  # (log q - log q_min) / (log q_max - log q_min)
        math.log(3) / math.log(10),
        math.log(2) / math.log(20),
        math.log(5) / math.log(10),
    ][cluster]
    mid_acc = [0.5, 1.0, 1 / 3][cluster]
    big_acc = [1.0, 2 / 3, 1.0][cluster]
    return {SMALL: b, MID: mid_acc * alpha + (1 - mid_cost) * b, BIG: big_acc * alpha}


def summed(x_of, clusters: Sequence[int], alpha: float) -> dict[str, float]:
    return {m: sum(x_of(c, alpha)[m] for c in clusters) for m in (BIG, MID, SMALL)}


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
    # where small was measured, the others cost 0.0055 on average and small 0.004: ratio 8/11.
    # On q1 and q2 the others cost 0.011, so small counts there as 0.008: its mean is 0.006
    # (neither 0.002 with free answers nor 0.004 with its two known costs alone)
    with pytest.warns(UserWarning, match="m-small"):
        router = one_cluster_router(partly_measured_rows())
    assert router.cost_[0].tolist() == pytest.approx([0.015, 0.0015, 0.006])
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
        top_p=1,
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
    # cost: m-small's 0.008 against the others' 0.070 where measured (ratio 4/35), times the
    # others' mean cost on e3 (0.0075)
    assert router.cost_[c3].tolist() == pytest.approx([0.01, 0.005, 0.0075 * 4 / 35])


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
    router = ClusterRouter(n_clusters=4, top_p=2, embedder=keyword_embeddings)
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
        n_clusters=4, top_p=2, scoring="minmax", cluster_scales=(1.0,), shrinkage=0.0
    ).fit(rows, embeddings=vectors)
    labels = np.argmax(normalize_rows(vectors) @ router.cluster_centers_.T, axis=1)
    for k in range(4):
        np.testing.assert_allclose(router.accuracy_[k], scores[labels == k].mean(axis=0))
        np.testing.assert_allclose(router.cost_[k], costs[labels == k].mean(axis=0))
    np.testing.assert_allclose(router.global_accuracy_, scores.mean(axis=0))


# ---------------------------------------------------------------- the formula


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.7, 1.0])
def test_linear_cost_scale_matches_the_paper_formula_by_hand(alpha: float) -> None:
    router = fit_three_groups(cost_scale="linear")
    decision = router.route(QUERY_12, alpha)
    expected = summed(linear_x, [0, 1], alpha)
    assert scores_of(decision) == pytest.approx(expected)
    assert decision.model == max(expected, key=expected.get)
    assert decision.top_p == 2
    assert decision.alpha == alpha


@pytest.mark.parametrize(
    ("alpha", "model"),
    [(0.0, SMALL), (0.1, SMALL), (0.3, MID), (0.5, MID), (0.9, MID), (0.95, BIG), (1.0, BIG)],
)
def test_linear_choices_by_hand(alpha: float, model: str) -> None:
    # e1 + e2, summed: small 2(1-a); mid 1.5a + (7/9 + 18/19)(1-a); big (5/3)a.
    # small = mid at a = 0.155, mid = big at a = 0.912
    assert fit_three_groups(cost_scale="linear").route(QUERY_12, alpha).model == model


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_log_cost_scale_by_hand(alpha: float) -> None:
    router = fit_three_groups(cost_scale="log")
    decision = router.route(QUERY_12, alpha)
    assert scores_of(decision) == pytest.approx(summed(log_x, [0, 1], alpha))


def test_log_and_linear_differ_on_the_mid_model() -> None:
    linear = scores_of(fit_three_groups(cost_scale="linear").route(QUERY_12, 0.0))
    log = scores_of(fit_three_groups(cost_scale="log").route(QUERY_12, 0.0))
    assert linear[MID] == pytest.approx(7 / 9 + 18 / 19)  # 1.7251...
    assert log[MID] == pytest.approx(2 - math.log(3) / math.log(10) - math.log(2) / math.log(20))
    assert linear[SMALL] == log[SMALL] == pytest.approx(2.0)


def test_every_single_cluster_by_hand() -> None:
    router = fit_three_groups(top_p=1)
    for axis, query in enumerate([[1, 0.1, 0.05], [0.1, 1, 0.05], [0.05, 0.1, 1]]):
        decision = router.route(np.array(query), 0.35)
        assert scores_of(decision) == pytest.approx(linear_x(axis, 0.35))
        assert [c.cluster for c in decision.clusters] == [cluster_of(router, axis)]


def test_log_cost_floor_for_free_models() -> None:
    # one cluster; m-small is free. log(0) is floored at a tenth of the cheapest paid cost.
    rows = [
        record(f"q{i}", {BIG: 1, MID: 0.5, SMALL: 0}, {BIG: 0.01, MID: 0.001, SMALL: 0.0})
        for i in range(3)
    ]
    linear = one_cluster_router(rows)
    log = one_cluster_router(rows, cost_scale="log")
    # linear: cost~ mid = 0.001 / 0.01 = 0.1 ; log: floor 1e-4, so (log 1e-3 - log 1e-4) / 2 = 0.5
    assert scores_of(linear.route(E1, 0.0)) == pytest.approx({BIG: 0.0, MID: 0.9, SMALL: 1.0})
    assert scores_of(log.route(E1, 0.0)) == pytest.approx({BIG: 0.0, MID: 0.5, SMALL: 1.0})
    assert scores_of(log.route(E1, 0.5)) == pytest.approx({BIG: 0.5, MID: 0.5, SMALL: 0.5})


# ---------------------------------------------------------------- the decision


def test_decision_reports_expectations_and_clusters() -> None:
    router = fit_three_groups()
    decision = router.route(QUERY_12, 0.5)
    assert isinstance(decision, RoutingDecision)
    assert decision.model == MID
    assert decision.chosen == decision.candidates[0]
    assert decision.chosen.model == MID
    assert {c.model for c in decision.candidates} == {BIG, MID, SMALL}
    assert [c.model for c in decision.candidates] == [MID, SMALL, BIG]  # best first
    by_model = {c.model: c for c in decision.candidates}
    # mean over the two used clusters (e1, e2) of the raw statistics
    assert by_model[SMALL].expected_accuracy == pytest.approx(0.25)
    assert by_model[MID].expected_accuracy == pytest.approx(0.875)
    assert by_model[BIG].expected_accuracy == pytest.approx(5 / 6)
    assert by_model[SMALL].expected_cost == pytest.approx(0.001)
    assert by_model[MID].expected_cost == pytest.approx(0.0025)
    assert by_model[BIG].expected_cost == pytest.approx(0.015)
    assert all(isinstance(c, CandidateScore) for c in decision.candidates)

    assert all(isinstance(c, ClusterMatch) for c in decision.clusters)
    assert [c.cluster for c in decision.clusters] == [cluster_of(router, 0), cluster_of(router, 1)]
    assert [c.similarity for c in decision.clusters] == pytest.approx(SIMS_12[:2].tolist())
    assert [c.weight for c in decision.clusters] == [1.0, 1.0]


def test_decision_to_dict_is_json_ready() -> None:
    data = fit_three_groups().route(QUERY_12, 0.5).to_dict()
    again = json.loads(json.dumps(data))
    assert again["model"] == MID
    assert again["alpha"] == 0.5
    assert len(again["candidates"]) == 3
    assert set(again["candidates"][0]) == {"model", "score", "expected_accuracy", "expected_cost"}
    assert [c["cluster"] for c in again["clusters"]] == [c["cluster"] for c in data["clusters"]]


def test_route_accepts_lists_and_unnormalised_vectors() -> None:
    router = fit_three_groups()
    a = router.route(QUERY_12, 0.5)
    b = router.route(list(10 * QUERY_12), 0.5)
    assert a == b


def test_top_p_override_and_all_clusters() -> None:
    router = fit_three_groups(top_p=1)
    decision = router.route(QUERY_12, 0.5, top_p=3)
    assert decision.top_p == 3
    assert scores_of(decision) == pytest.approx(summed(linear_x, [0, 1, 2], 0.5))
    assert [c.similarity for c in decision.clusters] == pytest.approx(SIMS_12.tolist())


def test_softmax_cluster_weights_by_hand() -> None:
    router = fit_three_groups(cluster_weights="softmax", beta=9.0)
    decision = router.route(QUERY_12, 0.5)
    raw = np.exp(9.0 * (SIMS_12[:2] - SIMS_12[0]))
    weights = 2 * raw / raw.sum()  # rescaled to sum to top_p
    assert [c.weight for c in decision.clusters] == pytest.approx(weights.tolist())
    x1, x2 = linear_x(0, 0.5), linear_x(1, 0.5)
    expected = {m: weights[0] * x1[m] + weights[1] * x2[m] for m in x1}
    assert scores_of(decision) == pytest.approx(expected)


# ---------------------------------------------------------------- candidates


def test_allowed_models_renormalises_among_the_candidates() -> None:
    router = fit_three_groups(top_p=1)
    query = np.array([1.0, 0.1, 0.05])  # cluster e1 only
    everyone = router.route(query, 0.6)
    # all three: small 0.4, mid 0.6*0.5 + 0.4*7/9 = 0.6111, big 0.6
    assert everyone.model == MID
    assert scores_of(everyone) == pytest.approx({SMALL: 0.4, MID: 0.3 + 0.4 * 7 / 9, BIG: 0.6})
    # among mid and big only: mid becomes (acc~ 0, cost~ 0), big (1, 1)
    pair = router.route(query, 0.6, allowed_models=[BIG, MID])
    assert pair.model == BIG
    assert scores_of(pair) == pytest.approx({MID: 0.4, BIG: 0.6})
    assert router.route(query, 0.6, allowed_models=[MID, BIG]) == pair  # order is irrelevant
    assert router.route_batch(query[None, :], 0.6, allowed_models=[MID, BIG]) == [BIG]


def test_single_candidate_is_chosen_with_finite_scores() -> None:
    router = fit_three_groups()
    for alpha in (0.0, 0.5, 1.0):
        decision = router.route(QUERY_12, alpha, allowed_models=[BIG])
        assert decision.model == BIG
        assert [c.model for c in decision.candidates] == [BIG]
        assert math.isfinite(decision.chosen.score)
        assert decision.chosen.expected_accuracy == pytest.approx(5 / 6)
        assert decision.chosen.expected_cost == pytest.approx(0.015)


@pytest.mark.parametrize("allowed", [["gpt-unknown"], [BIG, "nope"]])
def test_unknown_model_is_a_value_error(allowed: list[str]) -> None:
    router = fit_three_groups()
    with pytest.raises(ValueError, match="unknown model"):
        router.route(QUERY_12, 0.5, allowed_models=allowed)
    with pytest.raises(ValueError, match="unknown model"):
        router.route_batch(QUERY_12[None, :], 0.5, allowed_models=allowed)


def test_empty_candidate_set_is_a_value_error() -> None:
    router = fit_three_groups()
    with pytest.raises(ValueError, match="empty"):
        router.route(QUERY_12, 0.5, allowed_models=[])
    with pytest.raises(ValueError, match="empty"):
        router.route_batch(QUERY_12[None, :], 0.5, allowed_models=[])


# ---------------------------------------------------------------- ties and equal models


def one_cluster_router(rows: list[CalibrationRecord], **params: object) -> ClusterRouter:
    vectors = np.tile(E1, (len(rows), 1))
    params = {"n_clusters": 1, "top_p": 1, "cost_scale": "linear", **PAPER, **params}
    return ClusterRouter(**params).fit(rows, embeddings=vectors)


def test_ties_go_to_the_cheaper_model() -> None:
    # big (first column): acc~ 1, cost~ 1; small: acc~ 0, cost~ 0; mid: acc~ 0.2, cost~ 0.9.
    # At alpha = 0.5, big and small both score exactly 0.5.
    rows = [
        record(f"q{i}", {BIG: 1, MID: s, SMALL: 0}, {BIG: 0.01, MID: 0.0091, SMALL: 0.001})
        for i, s in enumerate([0.2, 0.2])
    ]
    router = one_cluster_router(rows)
    decision = router.route(E1, 0.5)
    assert scores_of(decision) == pytest.approx({BIG: 0.5, MID: 0.15, SMALL: 0.5})
    assert decision.model == SMALL
    assert [c.model for c in decision.candidates] == [SMALL, BIG, MID]
    assert router.route_batch(np.tile(E1, (3, 1)), 0.5) == [SMALL] * 3
    assert router.route(E1, 0.51).model == BIG
    assert router.route(E1, 0.49).model == SMALL


def test_equal_accuracy_everywhere_goes_to_the_cheapest_even_at_alpha_1() -> None:
    rows = [
        record(f"q{i}", {BIG: 0.7, MID: 0.7, SMALL: 0.7}, {BIG: 0.03, MID: 0.02, SMALL: 0.01})
        for i in range(3)
    ]
    router = one_cluster_router(rows)
    for alpha in (0.0, 0.5, 1.0):
        decision = router.route(E1, alpha)
        assert decision.model == SMALL
        assert all(math.isfinite(c.score) for c in decision.candidates)
    at_one = scores_of(router.route(E1, 1.0))
    assert at_one[BIG] == at_one[MID] == at_one[SMALL]


def test_all_models_identical_gives_equal_finite_scores() -> None:
    rows = [
        record(f"q{i}", {BIG: 0.5, MID: 0.5, SMALL: 0.5}, {BIG: 0.01, MID: 0.01, SMALL: 0.01})
        for i in range(3)
    ]
    router = one_cluster_router(rows, cost_scale="log")
    for alpha in (0.0, 0.3, 1.0):
        scores = scores_of(router.route(E1, alpha))
        assert all(math.isfinite(s) for s in scores.values())
        assert len(set(scores.values())) == 1


def test_model_without_any_cost_cannot_be_fitted() -> None:
    rows = [record(f"q{i}", {BIG: 1, SMALL: 0}, {SMALL: 0.001}) for i in range(3)]
    with pytest.raises(RecordsError, match=r"m-big.*usages\.<model>\.cost"):
        one_cluster_router(rows)


# ---------------------------------------------------------------- batch routing


def test_route_batch_agrees_with_route_one_by_one() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(30, 3))
    for cost_scale in ("linear", "log"):
        for top_p in (1, 2, 3):
            router = fit_three_groups(cost_scale=cost_scale, top_p=top_p)
            for allowed in (None, [BIG], [MID, SMALL], [SMALL, BIG]):
                for alpha in (0.0, 0.2, 0.5, 0.8, 1.0):
                    batch = router.route_batch(vectors, alpha, allowed_models=allowed)
                    single = [router.route(v, alpha, allowed_models=allowed).model for v in vectors]
                    assert batch == single, (cost_scale, top_p, allowed, alpha)


def test_route_batch_on_texts_agrees_with_route(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=5, top_p=2, embedder=keyword_embeddings).fit(small_jsonl)
    queries = [
        "What is 12 plus 30? Answer with a number.",
        "What is the capital city of Spain?",
        "Write a Python function that reverses a list.",
        "Tell me a joke",
    ]
    for alpha in (0.0, 0.5, 1.0):
        assert router.route_batch(queries, alpha) == [router.route(q, alpha).model for q in queries]
    vectors = np.array(keyword_embeddings.embed_documents(queries))
    assert router.route_batch(vectors, 0.5) == router.route_batch(queries, 0.5)


def test_text_queries_route_by_topic(small_jsonl: Path, keyword_embeddings) -> None:
    # small.jsonl per dataset (tiny / medium / large): arith acc 0.30 / 0.77 / 0.93,
    # capitals 0.933 / 0.897 / 0.933 (tiny ties large), code 0.31 / 0.65 / 0.88.
    # one fit of 3 clusters, one per topic (the ensemble's 2-cluster fit would merge two), raw
    # cluster means (the tie on capitals would otherwise move toward the pool means)
    router = ClusterRouter(
        n_clusters=3, top_p=1, cluster_scales=(1.0,), shrinkage=0.0, embedder=keyword_embeddings
    ).fit(small_jsonl)
    arith = "What is 12 plus 30? Answer with a number."
    capital = "What is the capital city of Spain?"
    code = "Write a Python function that reverses a list."
    assert router.route_batch([arith, capital, code], 1.0) == [
        "acme/large",
        "acme/tiny",
        "acme/large",
    ]
    assert router.route_batch([arith, capital, code], 0.0) == ["acme/tiny"] * 3
    assert router.route(code, 1.0, allowed_models=["acme/tiny", "acme/medium"]).model == (
        "acme/medium"
    )
    decision = router.route(capital, 1.0)
    assert decision.chosen.expected_accuracy == pytest.approx(28 / 30)


# ---------------------------------------------------------------- sklearn conventions


PARAM_NAMES = {
    "n_clusters",
    "top_p",
    "embedder",
    "cost_scale",
    "cluster_weights",
    "beta",
    "shrinkage",
    "n_init",
    "random_state",
    "show_progress",
    "scoring",
    "cluster_scales",
}


def test_init_only_stores_parameters() -> None:
    router = ClusterRouter(n_clusters=-3, top_p=99, cost_scale="cubic")  # type: ignore[arg-type]
    assert router.n_clusters == -3
    assert router.top_p == 99
    assert router.cost_scale == "cubic"
    assert set(router.get_params()) == PARAM_NAMES
    assert not [k for k in vars(router) if k.endswith("_")]


def test_get_params_set_params_and_clone(keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=7, embedder=keyword_embeddings)
    params = router.get_params()
    assert params["n_clusters"] == 7
    assert params["top_p"] == 4
    assert params["embedder"] is keyword_embeddings
    assert (params["cost_scale"], params["scoring"]) == ("linear", "utility")
    assert params["cluster_scales"] == (0.5, 1.0, 2.0)
    assert router.set_params(top_p=2, cost_scale="log") is router
    assert (router.top_p, router.cost_scale) == (2, "log")
    copy = clone(router)
    assert copy is not router
    assert copy.get_params()["top_p"] == 2
    assert copy.get_params()["n_clusters"] == 7
    with pytest.raises(ValueError, match="Invalid parameter"):
        router.set_params(n_cluster=3)


def test_scikit_learn_sees_an_estimator(keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=3, top_p=2, embedder=keyword_embeddings)
    # changed parameters only, sorted by name, as scikit-learn prints them
    assert repr(router) == f"ClusterRouter(embedder={keyword_embeddings!r}, n_clusters=3, top_p=2)"
    assert repr(ClusterRouter()) == "ClusterRouter()"
    with pytest.raises(NotFittedError, match="This ClusterRouter instance is not fitted yet"):
        check_is_fitted(router)
    rows, vectors = three_group_data()
    check_is_fitted(router.fit(rows, embeddings=vectors))
    copy = clone(router)  # parameters only (the embedder deep-copied), not fitted
    assert repr(copy) == repr(router).replace(repr(keyword_embeddings), repr(copy.embedder))
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)


def test_fit_returns_self_and_fitted_attributes_end_with_underscore() -> None:
    rows, vectors = three_group_data()
    router = ClusterRouter(n_clusters=3, top_p=2)
    before = set(vars(router))
    assert router.fit(rows, embeddings=vectors) is router
    public = {k for k in set(vars(router)) - before if not k.startswith("_")}
    assert public == {
        "n_clusters_",
        "top_p_",
        "models_",
        "cluster_centers_",
        "cluster_sizes_",
        "accuracy_",
        "cost_",
        "n_scored_",
        "n_costed_",
        "global_accuracy_",
        "global_cost_",
        "n_features_in_",
        "embedder_id_",
        "data_fingerprint_",
        "n_samples_fit_",
        "cluster_counts_",
        "log_prices_",
    }
    assert router.get_params()["n_clusters"] == 3  # fitting does not touch parameters


def test_unfitted_router_raises_not_fitted_error(tmp_path: Path) -> None:
    router = ClusterRouter(n_clusters=3)
    with pytest.raises(NotFittedError):
        router.route(QUERY_12, 0.5)
    with pytest.raises(NotFittedError):
        router.route("What is 2 + 2?", 0.5)
    with pytest.raises(NotFittedError):
        router.route_batch(QUERY_12[None, :], 0.5)
    with pytest.raises(NotFittedError):
        router.save(tmp_path / "r")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": 13}, "n_clusters"),  # more clusters than the 12 queries
        ({"n_clusters": "many"}, "n_clusters must be 'auto' or an int"),
        ({"n_clusters": 2.5}, "n_clusters"),
        ({"n_clusters": 3, "top_p": 0}, "top_p"),
        ({"n_clusters": 3, "top_p": 1.5}, "top_p"),
        ({"cost_scale": "cubic"}, "cost_scale"),
        ({"cluster_weights": "random"}, "cluster_weights"),
        ({"shrinkage": -1.0}, "shrinkage"),
    ],
)
def test_invalid_parameters_fail_at_fit(params: dict, match: str) -> None:
    rows, vectors = three_group_data()
    router = ClusterRouter(**{"n_clusters": 3, "top_p": 2, **params})
    with pytest.raises(ValueError, match=match):
        router.fit(rows, embeddings=vectors)


def test_wrong_embeddings_shape_at_fit() -> None:
    rows, vectors = three_group_data()
    with pytest.raises(ValueError, match=r"expected shape \(12, n_features\)"):
        ClusterRouter(n_clusters=3, top_p=2).fit(rows, embeddings=vectors[:5])


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_alpha_outside_unit_interval(alpha: float) -> None:
    router = fit_three_groups()
    with pytest.raises(ValueError, match="alpha"):
        router.route(QUERY_12, alpha)
    with pytest.raises(ValueError, match="alpha"):
        router.route_batch(QUERY_12[None, :], alpha)


def test_query_embedding_of_the_wrong_size() -> None:
    router = fit_three_groups()
    with pytest.raises(ValueError, match="expected 3 features"):
        router.route(np.ones(4), 0.5)
    with pytest.raises(ValueError, match="expected 3 features"):
        router.route_batch(np.ones((2, 5)), 0.5)


@pytest.mark.parametrize("top_p", [0, 4])
def test_top_p_override_out_of_range(top_p: int) -> None:
    with pytest.raises(ValueError, match="top_p"):
        fit_three_groups().route(QUERY_12, 0.5, top_p=top_p)


def test_a_failed_refit_leaves_the_fitted_router_as_it_was() -> None:
    router = fit_three_groups()
    before = router.route(QUERY_12, 0.5)
    accuracy, cost = router.accuracy_.copy(), router.cost_.copy()
    rows, vectors = three_group_data()
    no_cost_for_small = [  # same three models, but m-small's cost is never known
        r.model_copy(update={"usages": {m: u for m, u in r.usages.items() if m != SMALL}})
        for r in rows
    ]
    mirrored = vectors[:, ::-1].copy()  # would give other clusters, other statistics
    with pytest.raises(RecordsError, match="m-small"):
        router.fit(no_cost_for_small, embeddings=mirrored)
    np.testing.assert_array_equal(router.accuracy_, accuracy)
    np.testing.assert_array_equal(router.cost_, cost)
    assert router.route(QUERY_12, 0.5) == before


# ---------------------------------------------------------------- cluster count and top_p


@pytest.mark.parametrize(
    ("n", "k"),
    [
        (1, 1),
        (2, 2),
        (12, 3),
        (25, 5),
        (100, 10),
        (150, 12),
        (600, 24),
        (2205, 47),
        (3540, 59),
        (3541, 60),
        (9000, 60),
    ],
)
def test_auto_cluster_count_follows_the_data_size(n: int, k: int) -> None:
    assert auto_n_clusters(n) == k


def test_auto_is_the_default_and_stays_a_parameter(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(embedder=keyword_embeddings)
    assert router.get_params()["n_clusters"] == "auto"
    router.fit(small_jsonl)
    assert router.n_clusters == "auto"
    assert (router.n_clusters_, router.top_p_) == (9, 4)  # 90 queries
    assert router.cluster_counts_.tolist() == [5, 9, 18]  # scales 0.5, 1, 2 (4.5 rounds up)
    assert router.cluster_centers_.shape == (5 + 9 + 18, 4)
    assert len(router.route("What is 2 plus 2?", 0.5).clusters) == 3 * 4


def test_top_p_is_clamped_to_the_cluster_count() -> None:
    router = fit_three_groups(top_p=4)  # the trial: n_clusters 2 with the default top_p failed
    assert (router.top_p, router.n_clusters_, router.top_p_) == (4, 3, 3)
    decision = router.route(QUERY_12, 0.5)
    assert decision.top_p == 3
    assert [c.cluster for c in decision.clusters] == [cluster_of(router, a) for a in range(3)]
    assert router.route(QUERY_12, 0.5, top_p=1).top_p == 1  # explicit, in range: honoured


def test_explicit_cluster_count_is_honoured(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=5, top_p=2, embedder=keyword_embeddings).fit(small_jsonl)
    assert (router.n_clusters_, router.top_p_) == (5, 2)
    assert router.cluster_counts_.tolist() == [3, 5, 10]
    assert router.cluster_sizes_.sum() == 3 * 90  # every query in one cluster of each fit


def test_too_many_clusters_for_the_data_warns_once(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=60, embedder=keyword_embeddings)
    with pytest.warns(UserWarning, match="calibration queries hold a median") as caught:
        router.fit(small_jsonl)
    messages = [str(w.message) for w in caught if "calibration queries" in str(w.message)]
    assert len(messages) == 1
    median = float(np.median(router.cluster_sizes_))
    assert median < 5
    assert messages[0].startswith(
        f"60 cluster(s) of 90 calibration queries hold a median of {median:g} queries each"
    )
    assert "use n_clusters='auto' (9 clusters for 90 queries) or give more" in messages[0]
    assert caught[0].filename == __file__  # points at the caller's fit


def test_auto_on_enough_data_does_not_warn(small_jsonl: Path, keyword_embeddings) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ClusterRouter(embedder=keyword_embeddings).fit(small_jsonl)


# ---------------------------------------------------------------- memory


def test_many_distinct_candidate_sets_keep_the_normalisation_cache_bounded() -> None:
    rng = np.random.default_rng(0)
    models = [f"m{j:02d}" for j in range(20)]
    rows = [
        record(
            f"q{i}",
            {m: float(rng.random()) for m in models},
            {m: 0.001 * (j + 1) for j, m in enumerate(models)},
        )
        for i in range(40)
    ]
    router = ClusterRouter(n_clusters=4, top_p=2).fit(rows, embeddings=rng.normal(size=(40, 8)))
    query = rng.normal(size=8)
    subsets = {
        tuple(sorted(rng.choice(models, size=rng.integers(2, 20), replace=False)))
        for _ in range(5000)
    }
    first = sorted(subsets)[0]
    before = router.route(query, 0.5, allowed_models=list(first))
    for subset in subsets:
        router.route(query, 0.5, allowed_models=list(subset))
    assert len(subsets) > 4 * NORM_CACHE_SIZE
    assert len(router._norm_cache) <= NORM_CACHE_SIZE
    assert router.route(query, 0.5, allowed_models=list(first)) == before  # recomputed alike


def test_a_router_over_one_model_says_it_has_nothing_to_choose() -> None:
    rows, vectors = three_group_data()
    only_big = [record(r.query, {BIG: r.records[BIG]}, {BIG: r.usages[BIG].cost}) for r in rows]
    with pytest.warns(UserWarning, match=rf"one model \({BIG}\) has scores, so the router always"):
        router = ClusterRouter(n_clusters=3, top_p=2, **PAPER).fit(only_big, embeddings=vectors)
    assert router.route(vectors[0], 0.0).model == BIG
