"""What routing returns: one query's decision, or many queries' alpha-independent scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

TIE_TOLERANCE = 1e-9
"""Scores this close count as a tie, which goes to the cheaper model."""


@dataclass(frozen=True)
class CandidateScore:
    """How one candidate model scored for a query."""

    model: str
    score: float
    """``expected accuracy - price * expected cost`` (``scoring="utility"``), or the sum over
    the used clusters of ``alpha * acc~ + (1 - alpha) * (1 - cost~)`` (``"minmax"``)."""
    expected_accuracy: float
    """Mean score of the model on the used clusters' calibration queries."""
    expected_cost: float
    """Mean USD per query of the model on the used clusters' calibration queries."""


@dataclass(frozen=True)
class ClusterMatch:
    """One of the nearest clusters a query was scored on."""

    cluster: int
    similarity: float
    weight: float


@dataclass(frozen=True)
class RoutingDecision:
    """Which model a query goes to, and why."""

    model: str
    alpha: float
    nearest_clusters: int
    candidates: tuple[CandidateScore, ...]
    """Every candidate, best first."""
    clusters: tuple[ClusterMatch, ...]
    """The clusters used, nearest first within each k-means fit of the ensemble; empty for a
    query with no embeddable text."""

    @property
    def chosen(self) -> CandidateScore:
        """The chosen candidate's scores."""
        return self.candidates[0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


def minmax_weights(alpha: float) -> tuple[float, float]:
    """The paper's weights of the accuracy and cost parts: ``alpha`` and ``1 - alpha``."""
    return alpha, 1.0 - alpha


@dataclass(frozen=True)
class BatchScores:
    """Routing scores of many queries, so any alpha costs one multiply-add.

    ``score(alpha) = w_acc * accuracy_part + w_cost * cost_part`` with
    ``(w_acc, w_cost) = alpha_weights(alpha)``: ``(alpha, 1 - alpha)`` for the paper's score.
    """

    models: list[str]
    accuracy_part: np.ndarray
    cost_part: np.ndarray
    expected_accuracy: np.ndarray
    expected_cost: np.ndarray
    alpha_weights: Callable[[float], tuple[float, float]] = minmax_weights

    def scores(self, alpha: float) -> np.ndarray:
        """``(n_queries, n_candidates)`` routing scores at ``alpha``."""
        w_acc, w_cost = self.alpha_weights(alpha)
        return w_acc * self.accuracy_part + w_cost * self.cost_part

    def choose(self, alpha: float) -> np.ndarray:
        """Index of the chosen candidate per query; ties go to the cheaper model."""
        scores = self.scores(alpha)
        best = scores.max(axis=1, keepdims=True)
        tied = scores >= best - TIE_TOLERANCE
        return np.where(tied, self.expected_cost, np.inf).argmin(axis=1)
