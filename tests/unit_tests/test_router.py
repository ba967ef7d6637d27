"""ClusterRouter: the paper's formula checked by hand on a geometry built by hand.

The formula, the decision, candidate sets, ties, batch routing and the normalisation cache.

The geometry (12 queries on the unit vectors e1, e2, e3; models ``m-big``, ``m-mid``,
``m-small``) and its per-cluster table are in ``tests/hand_built_router.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hand_built_router import (
    BIG,
    E1,
    MID,
    PAPER,
    QUERY_12,
    SIMS_12,
    SMALL,
    cluster_of,
    fit_three_groups,
    linear_x,
    log_x,
    one_cluster_router,
    record,
    scores_of,
    summed,
    three_group_data,
)

from langchain_avengers import (
    CandidateScore,
    ClusterMatch,
    ClusterRouter,
    RecordsError,
    RoutingDecision,
)
from langchain_avengers.routing.router import NORM_CACHE_SIZE

# the hand-built geometry has 4 queries a cluster, below what fitting calls enough
pytestmark = pytest.mark.filterwarnings("ignore:.*calibration queries hold a median")


# ---------------------------------------------------------------- the formula


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.7, 1.0])
def test_linear_cost_scale_matches_the_paper_formula_by_hand(alpha: float) -> None:
    router = fit_three_groups(cost_scale="linear")
    decision = router.route(QUERY_12, alpha)
    expected = summed(linear_x, [0, 1], alpha)
    assert scores_of(decision) == pytest.approx(expected)
    assert decision.model == max(expected, key=expected.get)
    assert decision.nearest_clusters == 2
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
    router = fit_three_groups(nearest_clusters=1)
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


def test_nearest_clusters_override_and_all_clusters() -> None:
    router = fit_three_groups(nearest_clusters=1)
    decision = router.route(QUERY_12, 0.5, nearest_clusters=3)
    assert decision.nearest_clusters == 3
    assert scores_of(decision) == pytest.approx(summed(linear_x, [0, 1, 2], 0.5))
    assert [c.similarity for c in decision.clusters] == pytest.approx(SIMS_12.tolist())


def test_softmax_cluster_weights_by_hand() -> None:
    router = fit_three_groups(cluster_weights="softmax", beta=9.0)
    decision = router.route(QUERY_12, 0.5)
    raw = np.exp(9.0 * (SIMS_12[:2] - SIMS_12[0]))
    weights = 2 * raw / raw.sum()  # rescaled to sum to nearest_clusters
    assert [c.weight for c in decision.clusters] == pytest.approx(weights.tolist())
    x1, x2 = linear_x(0, 0.5), linear_x(1, 0.5)
    expected = {m: weights[0] * x1[m] + weights[1] * x2[m] for m in x1}
    assert scores_of(decision) == pytest.approx(expected)


# ---------------------------------------------------------------- candidates


def test_allowed_models_renormalises_among_the_candidates() -> None:
    router = fit_three_groups(nearest_clusters=1)
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
        for nearest_clusters in (1, 2, 3):
            router = fit_three_groups(cost_scale=cost_scale, nearest_clusters=nearest_clusters)
            for allowed in (None, [BIG], [MID, SMALL], [SMALL, BIG]):
                for alpha in (0.0, 0.2, 0.5, 0.8, 1.0):
                    batch = router.route_batch(vectors, alpha, allowed_models=allowed)
                    single = [router.route(v, alpha, allowed_models=allowed).model for v in vectors]
                    assert batch == single, (cost_scale, nearest_clusters, allowed, alpha)


def test_route_batch_on_texts_agrees_with_route(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=5, nearest_clusters=2, embedder=keyword_embeddings).fit(
        small_jsonl
    )
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
        n_clusters=3,
        nearest_clusters=1,
        cluster_scales=(1.0,),
        shrinkage=0.0,
        embedder=keyword_embeddings,
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


# ---------------------------------------------------------------- memory


@pytest.mark.slow
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
    router = ClusterRouter(n_clusters=4, nearest_clusters=2).fit(
        rows, embeddings=rng.normal(size=(40, 8))
    )
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
        router = ClusterRouter(n_clusters=3, nearest_clusters=2, **PAPER).fit(
            only_big, embeddings=vectors
        )
    assert router.route(vectors[0], 0.0).model == BIG
