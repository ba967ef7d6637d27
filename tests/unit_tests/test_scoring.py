"""The utility score and the k-means ensemble, checked by hand.

Pure functions first (hull breakpoints, the alpha -> price table, ensemble sizes), then the
router on the hand-built three-group geometry of ``test_router.py``: 12 queries on the unit
vectors e1, e2, e3, whose per-cluster statistics are tabulated there.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hand_built_router import BIG, E1, E2, E3, MID, SMALL, record, three_group_data

from langchain_avengers import ClusterRouter
from langchain_avengers.routing.kmeans import ensemble_counts
from langchain_avengers.routing.scoring import hull_breakpoints, price_schedule, utility_weights

pytestmark = pytest.mark.filterwarnings("ignore:.*calibration queries hold a median")


# ---------------------------------------------------------------- pure functions


def breakpoints_of(points: list[tuple[float, float]]) -> list[float]:
    """Prices (not logs) at which one query's best choice changes; points are (cost, acc)."""
    cost, acc = np.array(points).T
    return np.exp(hull_breakpoints(acc[None, :], cost[None, :])).tolist()


def test_breakpoints_are_the_slopes_of_the_upper_hull() -> None:
    # (cost, accuracy): the 3rd point costs more than the 2nd for less: never chosen
    assert breakpoints_of([(1, 0.5), (2, 0.8), (3, 0.6), (4, 0.9)]) == pytest.approx(
        [0.3, 0.05]  # 0.3 / 1 then 0.1 / 2
    )


def test_a_point_under_the_hull_is_skipped() -> None:
    # the middle point lies under the chord from the cheapest to the best: no price picks it
    assert breakpoints_of([(1, 0.5), (2, 0.55), (3, 0.9)]) == pytest.approx([0.2])


def test_equal_costs_keep_the_more_accurate_and_one_model_has_none() -> None:
    assert breakpoints_of([(1, 0.5), (1, 0.7), (2, 0.9)]) == pytest.approx([0.2])
    assert breakpoints_of([(1, 0.9), (2, 0.5)]) == []  # the cheapest is also the best


def test_identical_rows_count_once_each() -> None:
    acc = np.array([[0.5, 0.8], [0.5, 0.8], [0.5, 0.6]])
    cost = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    assert np.exp(hull_breakpoints(acc, cost)) == pytest.approx([0.1, 0.3, 0.3])


def test_price_schedule_walks_the_quantiles_from_the_highest() -> None:
    table = price_schedule(np.log([1.0, 10.0, 100.0, 1000.0, 10000.0]))
    assert len(table) == 101
    assert np.exp(table[[0, 25, 50, 75, 100]]) == pytest.approx([1e4, 1e3, 1e2, 10, 1])
    assert np.all(np.diff(table) <= 0)
    assert price_schedule(np.array([])) == pytest.approx(np.zeros(101))


def test_utility_weights_keep_alpha_one_for_accuracy_and_zero_for_cost() -> None:
    table = price_schedule(np.log([1.0, 10.0, 100.0]))
    assert utility_weights(1.0, table) == (1.0, 0.0)
    assert utility_weights(0.0, table) == (0.0, 1.0)
    assert utility_weights(0.5, table) == pytest.approx((1.0, 10.0))
    assert utility_weights(0.25, table) == pytest.approx((1.0, math.sqrt(1000)))


@pytest.mark.parametrize(
    ("k", "scales", "n", "expected"),
    [
        (9, (0.5, 1.0, 2.0), 90, [5, 9, 18]),  # 4.5 rounds up
        (60, (0.5, 1.0, 2.0), 100, [30, 60, 100]),  # never more clusters than queries
        (2, (0.25, 1.0), 10, [1, 2]),  # at least one cluster
        (7, (1.0,), 50, [7]),
    ],
)
def test_ensemble_counts(k: int, scales: tuple[float, ...], n: int, expected: list[int]) -> None:
    assert ensemble_counts(k, scales, n) == expected


# ---------------------------------------------------------------- the router, by hand

# nearest_clusters = 1: each calibration query is scored on its own cluster. (cost, accuracy) per
# cluster:
#   e1: small (.001, .5), mid (.003, .75), big (.01, 1): hull slopes 125 then 250/7 = 35.7
#   e2: small (.001, 0), mid (.002, 1), big (.02, 2/3) dominated: slope 1000
#   e3: small never measured there, so its pool means (.001, .25); mid (.005, .5) lies under
#       the chord to big (.01, 1): one slope .75 / .009 = 83.3
# 4 queries each, so 16 breakpoints; alpha 0 -> 1000, alpha 1 -> 35.7, alpha 0.5 -> the
# geometric mean of the 8th and 9th smallest, sqrt(83.3 * 125).
SLOPES = {"e1": (125.0, 250 / 7), "e2": (1000.0,), "e3": (0.75 / 0.009,)}


def utility_router(**params: object) -> ClusterRouter:
    rows, vectors = three_group_data()
    params = {
        "n_clusters": 3,
        "nearest_clusters": 1,
        "cluster_scales": (1.0,),
        "shrinkage": 0.0,
        **params,
    }
    return ClusterRouter(**params).fit(rows, embeddings=vectors)


def test_price_table_comes_from_the_calibration_queries_breakpoints() -> None:
    router = utility_router()
    prices = np.exp(router.log_prices_)
    assert prices[0] == pytest.approx(1000.0)
    assert prices[-1] == pytest.approx(250 / 7)
    assert prices[50] == pytest.approx(math.sqrt(0.75 / 0.009 * 125))


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [(0.0, SMALL), (0.2, SMALL), (0.5, MID), (0.99, MID), (1.0, BIG)],
)
def test_choices_on_cluster_e1_follow_its_slopes(alpha: float, expected: str) -> None:
    router = utility_router()
    # price at 0.2: between 125 and 1000 (small); at 0.5: 102 (mid); at 0.99: above 35.7 (mid)
    assert router.route(E1, alpha).model == expected


def test_utility_score_is_expected_accuracy_minus_price_times_cost() -> None:
    router = utility_router()
    price = math.sqrt(0.75 / 0.009 * 125)
    scores = {c.model: c.score for c in router.route(E1, 0.5).candidates}
    assert scores == pytest.approx(
        {SMALL: 0.5 - price * 0.001, MID: 0.75 - price * 0.003, BIG: 1.0 - price * 0.01}
    )
    assert router.route(E2, 0.5).model == MID  # mid is cheapest-but-one and best on e2


def test_utility_keeps_a_tiny_gap_tiny() -> None:
    # the complaint: min-max turns 0.951 vs 0.95 into accuracy~ 1 vs 0. On e1 big is
    # 10x the price for +0.001; on e2 and e3 it is clearly better. Slopes 0.111, 88.9, 44.4.
    table = {
        "e1": ({BIG: 0.951, SMALL: 0.95}, E1),
        "e2": ({BIG: 0.9, SMALL: 0.1}, E2),
        "e3": ({BIG: 0.9, SMALL: 0.5}, E3),
    }
    rows, vectors = [], []
    for name, (scores, vector) in table.items():
        for i in range(4):
            rows.append(record(f"{name}-{i}", scores, {BIG: 0.01, SMALL: 0.001}))
            vectors.append(vector)
    fit = {"n_clusters": 3, "nearest_clusters": 1, "cluster_scales": (1.0,), "shrinkage": 0.0}
    paper = ClusterRouter(scoring="minmax", **fit).fit(rows, embeddings=np.array(vectors))
    utility = ClusterRouter(**fit).fit(rows, embeddings=np.array(vectors))
    # min-max at 0.6 on e1: big 0.6 * 1 + 0.4 * 0 = 0.6 against small 0.4
    assert paper.route(E1, 0.6).model == BIG
    # utility at 0.6: price 44.4 (the 0.4 quantile); big 0.951 - 0.444 < small 0.95 - 0.044
    assert utility.route(E1, 0.6).model == SMALL
    assert utility.route(E2, 0.6).model == BIG
    assert utility.route(E1, 1.0).model == BIG  # alpha = 1 is still accuracy only


def test_an_ensemble_of_identical_fits_changes_nothing() -> None:
    # k-means finds e1, e2, e3 whatever its seed: two fits give the same statistics twice
    single = utility_router()
    double = utility_router(cluster_scales=(1.0, 1.0))
    assert double.cluster_counts_.tolist() == [3, 3]
    np.testing.assert_allclose(double.log_prices_, single.log_prices_)
    query = np.array([1.0, 0.5, 0.2])
    for alpha in (0.0, 0.4, 0.5, 1.0):
        a, b = single.route(query, alpha), double.route(query, alpha)
        assert [c.model for c in a.candidates] == [c.model for c in b.candidates]
        assert [c.score for c in a.candidates] == pytest.approx([c.score for c in b.candidates])
    assert [m.weight for m in double.route(query, 0.5).clusters] == [0.5, 0.5]


def test_a_one_cluster_fit_averages_in_the_pool_means() -> None:
    router = utility_router(cluster_scales=(1 / 3, 1.0))
    assert router.cluster_counts_.tolist() == [1, 3]
    chosen = {c.model: c for c in router.route(E1, 1.0).candidates}
    # the one-cluster fit's only cluster holds the pool means (big's null on e2 filled with
    # its expected score there); e1's cluster of the 3-cluster fit: big 1.0, mid 0.75
    big = router.models_.index(BIG)
    assert router.accuracy_[0, big] == pytest.approx(router.global_accuracy_[big])
    assert chosen[BIG].expected_accuracy == pytest.approx((1.0 + router.global_accuracy_[big]) / 2)
    assert chosen[MID].expected_accuracy == pytest.approx((0.75 + 9 / 12) / 2)
    assert chosen[BIG].expected_cost == pytest.approx((0.01 + router.global_cost_[big]) / 2)


def test_ensemble_route_batch_agrees_with_route() -> None:
    rows, vectors = three_group_data()
    router = ClusterRouter(n_clusters=2, nearest_clusters=2).fit(rows, embeddings=vectors)
    assert router.cluster_counts_.tolist() == [1, 2, 4]
    rng = np.random.default_rng(0)
    queries = np.vstack([rng.normal(size=(20, 3)), E1, E2, E3, np.zeros(3)])
    for alpha in (0.0, 0.3, 0.6, 1.0):
        for allowed in (None, [BIG, SMALL]):
            batch = router.route_batch(queries, alpha, allowed_models=allowed)
            one = [router.route(q, alpha, allowed_models=allowed).model for q in queries]
            assert batch == one


def test_log_cost_utility_prices_ratios() -> None:
    router = utility_router(cost_scale="log")
    # e2's only slope on log cost: 1 / log(2); e1's: 0.25 / log(3) then 0.25 / log(10 / 3)
    prices = np.exp(router.log_prices_)
    assert prices[0] == pytest.approx(1 / math.log(2))
    assert router.route(E2, 0.5).model == MID


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scoring": "rank"}, "scoring must be 'utility' or 'minmax'"),
        ({"cluster_scales": ()}, "cluster_scales must be a non-empty sequence"),
        ({"cluster_scales": (1.0, 0.0)}, "cluster_scales must be"),
        ({"cluster_scales": "1"}, "cluster_scales must be"),
        ({"cluster_scales": (1.0, float("nan"))}, "cluster_scales must be"),
    ],
)
def test_bad_new_parameters_are_refused_at_fit(params: dict, message: str) -> None:
    rows, vectors = three_group_data()
    with pytest.raises(ValueError, match=message):
        ClusterRouter(n_clusters=3, **params).fit(rows, embeddings=vectors)
