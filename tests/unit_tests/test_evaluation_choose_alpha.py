"""Evaluation.choose_alpha: the alpha that keeps a budget (``target_cost``, ``min_accuracy``) with
the chosen confidence, on hand-made seeds and on synthetic curves with a by-hand bootstrap.

The hand-made points and the two-seed evaluation are in ``tests/hand_made_evaluation.py``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hand_made_evaluation import BEST, SINGLES, point, single, two_seed_evaluation

from langchain_avengers.evaluation.evaluate import Evaluation, SplitEvaluation, compute_figures


@pytest.mark.parametrize(
    ("target", "alpha"),
    [
        ({"target_cost": 6.0}, 0.5),
        ({"target_cost": 5.0}, 0.0),
        ({"target_cost": 1e9}, 1.0),
        ({"min_accuracy": 0.7}, 0.5),
        ({"min_accuracy": 0.8}, 1.0),
        ({"min_accuracy": 0.1}, 0.0),
    ],
)
def test_choose_alpha_keeps_the_worse_seed_within_the_target(target: dict, alpha: float) -> None:
    # no spread within a seed: the 90% bound is the dearer seed, the 10% bound the worse one
    # (alpha 0.5 costs 5 and 6 and scores 0.78 and 0.70 in the two seeds)
    choice = two_seed_evaluation().choose_alpha(**target)
    assert choice.alpha == alpha
    assert choice.n_seeds == 2


def test_choose_alpha_reports_what_to_expect() -> None:
    choice = two_seed_evaluation().choose_alpha(target_cost=6.0)
    assert (choice.accuracy, choice.accuracy_std) == pytest.approx((0.74, 0.04))
    assert (choice.cost, choice.cost_std) == pytest.approx((5.5, 0.5))
    assert (choice.cost_bound, choice.accuracy_bound) == pytest.approx((6.0, 0.7))
    assert (choice.confidence, choice.n_test, choice.n_resamples) == (0.9, 3, 1000)
    assert choice.describe() == (
        "alpha=0.5: cost $5.5 per 1,000 queries expected, at most $6 with 90% confidence; "
        "accuracy 74.0% expected, at least 70.0% with 90% confidence (batches of 3 queries; "
        "2 seeds x 1,000 bootstrap resamples)"
    )


@pytest.mark.parametrize(
    ("target", "match"),
    [
        (
            {"target_cost": 1.4},
            r"no alpha stays within \$1.4 per 1,000 queries with 90% confidence; the cheapest "
            r"is alpha=0, \$1 expected and at most \$1.5",
        ),
        (
            {"min_accuracy": 0.86},
            r"no alpha reaches 86.0% with 90% confidence on held-out data; the best is "
            r"alpha=1, 87.5% expected and at least 85.0%",
        ),
        ({}, "exactly one"),
        ({"target_cost": 5.0, "min_accuracy": 0.5}, "exactly one"),
        ({"target_cost": 5.0, "confidence": 1.0}, r"confidence must be in \[0.5, 1\)"),
        ({"target_cost": 5.0, "confidence": 0.2}, "confidence must be"),
    ],
)
def test_choose_alpha_impossible_targets(target: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        two_seed_evaluation().choose_alpha(**target)


def test_choose_alpha_needs_per_query_outcomes() -> None:
    evaluation = two_seed_evaluation()
    evaluation.splits[1] = dataclasses.replace(evaluation.splits[1], routed_costs=None)
    with pytest.raises(ValueError, match=r"seed 1 has no per-query outcomes.*evaluate_router"):
        evaluation.choose_alpha(target_cost=6.0)


def synthetic_evaluation(seed: int = 0, n_seeds: int = 3, n_test: int = 300) -> Evaluation:
    """Curves with spread: per-query costs log-normal around a mean rising with alpha, scores
    0/1 with a rate rising with alpha, and each seed's router a little dearer or cheaper."""
    rng = np.random.default_rng(seed)
    alphas = [round(a, 2) for a in np.linspace(0, 1, 21)]
    splits = []
    for s in range(n_seeds):
        dearer = rng.uniform(0.85, 1.15)
        mean_cost = dearer * np.array([0.001 * 20 ** (a**2) for a in alphas])  # USD per query
        rate = np.array([0.6 + 0.3 * math.sqrt(a) for a in alphas])
        costs = mean_cost[:, None] * rng.lognormal(-0.5, 1.0, size=(len(alphas), n_test))
        scores = (rng.random((len(alphas), n_test)) < rate[:, None]).astype(float)
        curve = [
            point(a, float(sc.mean()), 1000 * float(c.mean()))
            for a, c, sc in zip(alphas, costs, scores, strict=True)
        ]
        split = SplitEvaluation(
            seed=s,
            n_train=700,
            n_test=n_test,
            singles=SINGLES,
            best_single=BEST,
            oracle=single("oracle", 0.95, 1.0),
            curve=curve,
            figures=compute_figures(SINGLES, curve, BEST),
            routed_costs=costs,
            routed_scores=scores,
        )
        splits.append(split)
    return Evaluation(splits=splits, alphas=alphas)


def mean_curve_alpha(evaluation: Evaluation, target: float) -> float:
    """The rule before bounds: the most accurate alpha whose seed-mean cost is within target."""
    fits = [p for p in evaluation.curve_mean() if p["cost"] <= target]
    return max(fits, key=lambda p: (p["accuracy"], -p["cost"]))["alpha"]


@pytest.mark.slow
def test_cost_bounds_sit_above_the_means_and_match_a_by_hand_bootstrap() -> None:
    evaluation = synthetic_evaluation()
    rows = evaluation.curve_bounds()
    for i, row in enumerate(rows):
        assert row["cost_bound"] > row["cost"]
        assert row["accuracy_bound"] < row["accuracy"]
        # by hand: resample each seed's queries, pool, take the 90% quantile of the means
        rng = np.random.default_rng(1)
        means = [
            1000 * s.routed_costs[i][rng.integers(0, s.n_test, s.n_test)].mean()  # type: ignore[index]
            for s in evaluation.splits
            for _ in range(2000)
        ]
        assert row["cost_bound"] == pytest.approx(np.quantile(means, 0.9), rel=0.02)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.slow
def test_choose_alpha_keeps_its_bound_under_the_target_on_synthetic_curves(seed: int) -> None:
    evaluation = synthetic_evaluation(seed)
    rows = evaluation.curve_bounds()
    stricter = 0
    for target in np.geomspace(1.5, 18.0, 12):
        choice = evaluation.choose_alpha(target_cost=float(target))
        assert choice.cost <= choice.cost_bound <= target
        chosen = next(r for r in rows if r["alpha"] == choice.alpha)
        assert chosen["cost_bound"] == choice.cost_bound
        # no more accurate alpha has a bound within the target
        assert all(r["cost_bound"] > target for r in rows if r["accuracy"] > choice.accuracy)
        assert choice.alpha <= mean_curve_alpha(evaluation, float(target))
        stricter += choice.alpha < mean_curve_alpha(evaluation, float(target))
    assert stricter >= 3  # the margin is real: often a cheaper alpha than the mean curve's


def test_min_accuracy_keeps_the_lower_bound_above_the_minimum() -> None:
    evaluation = synthetic_evaluation(seed=2)
    rows = evaluation.curve_bounds()
    for minimum in (0.62, 0.7, 0.75, 0.8, 0.85):
        choice = evaluation.choose_alpha(min_accuracy=minimum)
        assert choice.accuracy >= choice.accuracy_bound >= minimum
        cheaper = [r for r in rows if r["cost"] < choice.cost]
        assert all(r["accuracy_bound"] < minimum for r in cheaper)


def test_more_confidence_never_buys_a_dearer_alpha() -> None:
    evaluation = synthetic_evaluation(seed=3)
    for target in (3.0, 8.0):
        alphas = [
            evaluation.choose_alpha(target_cost=target, confidence=c).alpha
            for c in (0.5, 0.8, 0.9, 0.99)
        ]
        assert alphas == sorted(alphas, reverse=True)
    reaching = [
        evaluation.choose_alpha(min_accuracy=0.8, confidence=c).alpha for c in (0.5, 0.9, 0.99)
    ]
    assert reaching == sorted(reaching)
