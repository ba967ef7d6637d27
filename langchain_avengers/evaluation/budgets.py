"""Choosing alpha offline for a budget: bootstrap bounds on what each alpha costs and scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from langchain_avengers._utils.money import format_usd
from langchain_avengers.policies.pacing import ROUNDING

DEFAULT_CONFIDENCE = 0.9
"""Confidence of the cost bound ``choose_alpha`` keeps under a target (and of the accuracy
bound it keeps above a minimum)."""


DEFAULT_BOOTSTRAP = 1000
"""Bootstrap resamples of the held-out queries per seed."""


@dataclass(frozen=True)
class BudgetChoice:
    """The alpha chosen for a budget, with what held-out data says to expect.

    Costs are USD per 1,000 queries, accuracies fractions. ``cost`` and ``accuracy`` are seed
    means (``*_std`` the std over seeds); the bounds hold at ``confidence`` over bootstrap
    resamples of every seed's held-out queries (see ``Evaluation.choose_alpha``).
    """

    alpha: float
    accuracy: float
    accuracy_std: float
    cost: float
    """Expected USD per 1,000 queries."""
    cost_std: float
    n_seeds: int
    confidence: float
    cost_bound: float
    """USD per 1,000 queries that a fresh batch stays under, at ``confidence``."""
    accuracy_bound: float
    """Accuracy that a fresh batch stays above, at ``confidence``."""
    n_test: int
    """Held-out queries per seed: the batch size the bounds describe."""
    n_resamples: int
    """Bootstrap resamples per seed."""

    def describe(self) -> str:
        """One line for people."""
        level = f"{self.confidence:.0%} confidence"
        return (
            f"alpha={self.alpha:g}: cost {format_usd(self.cost)} per 1,000 queries expected, "
            f"at most {format_usd(self.cost_bound)} with {level}; accuracy {self.accuracy:.1%} "
            f"expected, at least {self.accuracy_bound:.1%} with {level} "
            f"(batches of {self.n_test:,} queries; "
            f"{self.n_seeds} seeds x {self.n_resamples:,} bootstrap resamples)"
        )


def bootstrap_means(
    per_seed: Sequence[np.ndarray],
    *,
    n_resamples: int = DEFAULT_BOOTSTRAP,
    random_state: int | None = 0,
) -> np.ndarray:
    """Means of bootstrap resamples of the held-out queries of every seed, pooled.

    Args:
        per_seed: One ``(n_points, n_queries)`` array per seed: a per-query value (cost or
            score) at each point of a curve (each alpha), on that seed's held-out queries.
        n_resamples: Resamples per seed; each draws as many queries as the seed held out, with
            replacement, the same queries for every point.
        random_state: Seed of the resampling, so a report is reproducible.

    Returns:
        ``(n_points, n_seeds * n_resamples)``: the mean per point of every resample. Its
        quantiles mix the spread between seeds (other fits, other held-out queries) and the
        spread of a mean over that many queries.

    Raises:
        ValueError: ``n_resamples`` is not a positive int, or a seed has no queries.
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        msg = f"n_resamples must be a positive int, got {n_resamples!r}"
        raise ValueError(msg)
    if any(np.shape(values)[-1] == 0 for values in per_seed):
        msg = "bootstrap_means: a seed has no held-out queries to resample"
        raise ValueError(msg)
    rng = np.random.default_rng(random_state)
    blocks = []
    for values in per_seed:
        values = np.asarray(values, dtype=float)
        n = values.shape[1]
        drawn = rng.integers(0, n, size=(n_resamples, n)) + n * np.arange(n_resamples)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=n_resamples * n).reshape(n_resamples, n)
        blocks.append(values @ counts.T / n)
    return np.concatenate(blocks, axis=1)


def choose_budget_point(
    curve: Sequence[dict[str, Any]],
    *,
    target_cost: float | None = None,
    min_accuracy: float | None = None,
    confidence: float,
) -> dict[str, Any]:
    """The point of a bounded curve (``Evaluation.curve_bounds``) that meets a budget.

    With ``target_cost``: the most accurate point whose ``cost_bound`` is within it. With
    ``min_accuracy``: the cheapest point whose ``accuracy_bound`` reaches it.

    Raises:
        ValueError: no point meets the target (the message names the closest one).
    """
    if target_cost is not None:
        return _within_cost(curve, target_cost, confidence)
    return _above_accuracy(curve, float(min_accuracy), confidence)  # type: ignore[arg-type]


def _within_cost(
    curve: Sequence[dict[str, Any]], target_cost: float, confidence: float
) -> dict[str, Any]:
    """The most accurate point whose cost bound is within ``target_cost``."""
    fits = [p for p in curve if p["cost_bound"] <= target_cost * (1 + ROUNDING)]
    if not fits:
        cheapest = min(curve, key=lambda p: p["cost_bound"])
        msg = (
            f"target_cost: no alpha stays within {format_usd(target_cost)} per 1,000 queries "
            f"with {confidence:.0%} confidence; the cheapest is alpha={cheapest['alpha']:g}, "
            f"{format_usd(cheapest['cost'])} expected and at most "
            f"{format_usd(cheapest['cost_bound'])}"
        )
        raise ValueError(msg)
    return max(fits, key=lambda p: (p["accuracy"], -p["cost"]))


def _above_accuracy(
    curve: Sequence[dict[str, Any]], min_accuracy: float, confidence: float
) -> dict[str, Any]:
    """The cheapest point whose accuracy bound reaches ``min_accuracy``."""
    fits = [p for p in curve if p["accuracy_bound"] >= min_accuracy * (1 - ROUNDING)]
    if not fits:
        top = max(curve, key=lambda p: p["accuracy_bound"])
        msg = (
            f"min_accuracy: no alpha reaches {min_accuracy:.1%} with {confidence:.0%} "
            f"confidence on held-out data; the best is alpha={top['alpha']:g}, "
            f"{top['accuracy']:.1%} expected and at least {top['accuracy_bound']:.1%}"
        )
        raise ValueError(msg)
    return min(fits, key=lambda p: (p["cost"], -p["accuracy"]))
