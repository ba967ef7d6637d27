"""Exploration and propensities, logged records, the propensity-weighted fit, off-policy estimates.

Exploration draws come from an injected, seeded ``random.Random``; the fit and the estimators
are checked on synthetic data whose true values are known.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from langchain_avengers import CalibrationData, CalibrationRecord, ClusterRouter
from langchain_avengers.chat_models.exploration import Exploration
from langchain_avengers.chat_models.routing import RoutingPath
from langchain_avengers.evaluation.off_policy import estimate_off_policy
from langchain_avengers.records.format import RecordsError, load_records
from langchain_avengers.routing.statistics import cluster_means, importance_weights

QUERY = "Write a Python function that reverses a list."


@pytest.fixture
def router(small_jsonl: Path, keyword_embeddings: Any) -> ClusterRouter:
    return ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings).fit(
        small_jsonl
    )


def path(router: ClusterRouter, **kwargs: Any) -> RoutingPath:
    return RoutingPath(router=router, profiles={}, pool=tuple(router.models_), **kwargs)


def plan_of(p: RoutingPath, **options: Any) -> Any:
    return p.route(p.call([HumanMessage(QUERY)], options=options))


# ---------------------------------------------------------------------- exploration


def test_without_exploration_the_router_choice_has_propensity_one(router: ClusterRouter) -> None:
    plan = plan_of(path(router))
    greedy = router.route(QUERY, 0.5).model
    assert plan.first_model == greedy
    meta = plan.run_metadata()
    assert meta["avengers_propensity"] == 1.0
    assert meta["avengers_explored"] is False
    assert meta["avengers_explore"] == 0.0
    assert meta["avengers_router"] == router.data_fingerprint_


def test_exploration_frequencies_match_the_recorded_propensities(router: ClusterRouter) -> None:
    explore = 0.3
    p = path(router, exploration=Exploration(explore, random.Random(7)))
    greedy = router.route(QUERY, 0.5).model
    n = 3000
    plans = [plan_of(p) for _ in range(n)]
    counts = Counter(plan.first_model for plan in plans)
    pool = router.models_
    for plan in plans:
        model = plan.first_model
        expected = (1 - explore) * (model == greedy) + explore / len(pool)
        assert plan.summary["propensity"] == pytest.approx(expected)
        assert plan.summary["explored"] == (model != greedy)
        assert plan.order[1:] == [m for m in plan.candidates if m != model]  # the rest, ranked
    for model in pool:  # the propensity is the frequency (binomial, 4.5 standard errors)
        p_model = (1 - explore) * (model == greedy) + explore / len(pool)
        assert abs(counts[model] / n - p_model) < 4.5 * np.sqrt(p_model * (1 - p_model) / n)


def test_exploration_is_reproducible_with_a_seeded_rng(router: ClusterRouter) -> None:
    first = [
        plan_of(path(router, exploration=Exploration(0.5, random.Random(3)))).first_model
        for _ in range(1)
    ]
    runs = [
        [plan_of(p).first_model for _ in range(20)]
        for p in (path(router, exploration=Exploration(0.5, random.Random(3))) for _ in range(2))
    ]
    assert runs[0] == runs[1]
    assert first[0] == runs[0][0]


def test_exploration_only_draws_models_that_can_serve_the_call(router: ClusterRouter) -> None:
    allowed = list(router.models_[:2])
    p = path(router, exploration=Exploration(1.0, random.Random(0)))
    plans = [plan_of(p, models=allowed) for _ in range(200)]
    assert {plan.first_model for plan in plans} == set(allowed)
    assert all(plan.summary["propensity"] == pytest.approx(0.5) for plan in plans)


def test_pinned_calls_are_never_explored(router: ClusterRouter) -> None:
    p = path(router, exploration=Exploration(1.0, random.Random(0)))
    pinned = router.models_[0]
    plans = [plan_of(p, model=pinned) for _ in range(50)]
    assert {plan.first_model for plan in plans} == {pinned}
    assert all(plan.run_metadata()["avengers_propensity"] is None for plan in plans)


def test_the_chat_model_refuses_an_exploration_rate_outside_0_1() -> None:
    from langchain_avengers import AvengersChatModel

    with pytest.raises(ValueError, match="explore"):
        AvengersChatModel(api_key="k", explore=1.5)
    assert AvengersChatModel(api_key="k").explore == 0.0


# ---------------------------------------------------------------------- records


def test_a_logged_record_round_trips_and_is_aligned(tmp_path: Path) -> None:
    line = (
        '{"query": "q", "records": {"a": 1.0}, "usages": {"a": {"cost": 0.1}}, '
        '"propensities": {"a": 0.25}}\n'
        '{"query": "r", "records": {"a": 0.0, "b": 1.0}, "usages": {"a": {"cost": 0.1}, '
        '"b": {"cost": 0.2}}}\n'
    )
    file = tmp_path / "logged.jsonl"
    file.write_text(line, encoding="utf-8")
    records = load_records(file)
    assert records[0].logged
    assert not records[1].logged
    data = CalibrationData.from_records(records)
    assert data.logged_rows.tolist() == [True, False]
    assert data.propensities is not None
    assert data.propensities[0].tolist()[0] == 0.25
    assert np.isnan(data.propensities[1]).all()


@pytest.mark.parametrize(
    ("propensities", "message"),
    [
        ({"b": 0.5}, "have a propensity but no score"),
        ({"a": 0.0}, "propensities.a"),
        ({"a": 1.5}, "propensities.a"),
    ],
)
def test_bad_propensities_are_refused_naming_the_line(
    tmp_path: Path, propensities: dict[str, float], message: str
) -> None:
    import json

    row = {"query": "q", "records": {"a": 1.0}, "usages": {"a": {"cost": 0.1}}}
    file = tmp_path / "bad.jsonl"
    file.write_text(json.dumps({**row, "propensities": propensities}) + "\n", encoding="utf-8")
    with pytest.raises(RecordsError, match=f"{file}:1: .*{message}"):
        load_records(file)


# ---------------------------------------------------------------------- weighted fit


def test_inverse_propensity_weights_undo_the_logging_routers_bias() -> None:
    """One cluster, two models. Model a scores 1 on 'easy' queries and 0 on 'hard' ones; the
    logging router sends easy queries to a with propensity 0.9 and hard ones with 0.1. The
    unweighted mean of a's logged scores is 0.9; the true mean (half easy) is 0.5."""
    rng = np.random.default_rng(0)
    n = 4000
    easy = rng.random(n) < 0.5
    p_a = np.where(easy, 0.9, 0.1)
    chose_a = rng.random(n) < p_a
    scores = np.full((n, 2), np.nan)
    scores[chose_a, 0] = easy[chose_a].astype(float)
    scores[~chose_a, 1] = 0.5
    props = np.full((n, 2), np.nan)
    props[chose_a, 0] = p_a[chose_a]
    props[~chose_a, 1] = 1 - p_a[~chose_a]
    labels = np.zeros((1, n), dtype=int)
    _, _, unweighted = cluster_means(
        scores, labels, 1, 0.0, "score", np.where(props > 0, 1.0, np.nan)
    )
    _, _, weighted = cluster_means(scores, labels, 1, 0.0, "score", importance_weights(props))
    assert unweighted[0, 0] == pytest.approx(0.9, abs=0.02)
    assert weighted[0, 0] == pytest.approx(0.5, abs=0.03)
    assert weighted[0, 1] == pytest.approx(0.5)


def test_fits_default_clip_is_the_documented_one() -> None:
    import inspect

    from langchain_avengers.routing.statistics import DEFAULT_MAX_WEIGHT

    default = inspect.signature(ClusterRouter.fit).parameters["max_weight"].default
    assert default == DEFAULT_MAX_WEIGHT


def test_max_weight_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_weight must be at least 1"):
        importance_weights(np.array([[0.5]]), max_weight=0.5)


def test_fit_mixes_full_and_logged_records(small_jsonl: Path, keyword_embeddings: Any) -> None:
    full = CalibrationData.from_path(small_jsonl)
    model = full.models[0]
    logged = CalibrationData.from_records(
        [
            CalibrationRecord(
                query=q,
                records={model: 1.0},
                usages={model: {"cost": 0.001}},  # type: ignore[dict-item]
                propensities={model: 0.5},
            )
            for q in full.queries[:4]
        ]
    )
    both = CalibrationData.concatenate([full, logged])
    assert both.logged_rows.sum() == 4
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings)
    plain = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings)
    router.fit(both)
    plain.fit(full)
    column = router.models_.index(model)
    fits = len(router.cluster_counts_)  # each query counts once per k-means fit
    assert router.n_scored_[:, column].sum() == plain.n_scored_[:, column].sum() + 4 * fits
    assert router.global_accuracy_[column] > plain.global_accuracy_[column]  # four more 1.0s


# ---------------------------------------------------------------------- off-policy estimates


def complete(path: Path) -> CalibrationData:
    """The records of ``path`` with every model's score and cost."""
    data = CalibrationData.from_path(path)
    rows = np.flatnonzero((~np.isnan(data.scores) & ~np.isnan(data.costs)).all(axis=1))
    return data.subset(rows)


def logged_from_full(
    full: CalibrationData, explore: float, greedy: np.ndarray, seed: int
) -> CalibrationData:
    rng = np.random.default_rng(seed)
    n, m = full.scores.shape
    explored = rng.random(n) < explore
    chosen = np.where(explored, rng.integers(0, m, n), greedy)
    props = (1 - explore) * (chosen == greedy) + explore / m
    rows = np.arange(n)
    scores, costs, prop = (np.full((n, m), np.nan) for _ in range(3))
    scores[rows, chosen] = full.scores[rows, chosen]
    costs[rows, chosen] = full.costs[rows, chosen]
    prop[rows, chosen] = props
    return CalibrationData(full.queries, full.models, scores, costs, full.datasets, prop)


def test_off_policy_estimates_hold_the_true_value(
    small_jsonl: Path, keyword_embeddings: Any
) -> None:
    full = complete(small_jsonl)
    big = CalibrationData.concatenate([full] * 40)  # the same queries, many logged calls
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings).fit(full)
    vectors = np.asarray(keyword_embeddings.embed_documents(big.queries))
    greedy = np.zeros(len(big), dtype=int)  # the logging router always chose the first model
    logged = logged_from_full(big, 0.5, greedy, seed=1)
    estimate = estimate_off_policy(router, logged, alpha=1.0, embeddings=vectors)
    picks = np.array([big.models.index(m) for m in router.route_batch(vectors, 1.0)])
    truth = big.scores[np.arange(len(big)), picks].mean()
    assert estimate.accuracy["dr"].contains(truth)
    assert estimate.accuracy["ips"].contains(truth)
    true_cost = big.costs[np.arange(len(big)), picks].mean() * 1000
    assert estimate.cost["dr"].contains(true_cost)
    observed = big.scores[np.arange(len(big)), np.nanargmax(logged.propensities, axis=1)].mean()
    assert estimate.logging_accuracy.value == pytest.approx(observed)
    assert estimate.n_unsupported == 0


def test_off_policy_says_when_the_logs_never_explored(
    small_jsonl: Path, keyword_embeddings: Any
) -> None:
    full = complete(small_jsonl)
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings).fit(full)
    vectors = np.asarray(keyword_embeddings.embed_documents(full.queries))
    greedy = np.zeros(len(full), dtype=int)
    logged = logged_from_full(full, 0.0, greedy, seed=0)
    estimate = estimate_off_policy(router, logged, alpha=1.0, embeddings=vectors)
    assert not estimate.reliable
    assert any("too little overlap" in w for w in estimate.warnings)
    assert any("too few explored calls" in w for w in estimate.warnings)
    assert "unreliable: too little overlap" in estimate.describe()


def test_off_policy_refuses_calibration_records(small_jsonl: Path, keyword_embeddings: Any) -> None:
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings).fit(
        small_jsonl
    )
    with pytest.raises(RecordsError, match="no record has 'propensities'"):
        estimate_off_policy(router, small_jsonl)
