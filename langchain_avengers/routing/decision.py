"""What routing returns: one query's decision, or many queries' alpha-independent scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from langchain_avengers.routing.scoring import rank

TIE_TOLERANCE = 1e-9
"""Scores this close count as a tie, which goes to the cheaper model."""


@dataclass(frozen=True)
class CandidateScore:
    """How one candidate model scored for a query."""

    model: str
    score: float
    """What the router maximises; higher is better. Compare it only with the other candidates
    of the same decision: its scale depends on the scoring, on alpha and on the router.

    * ``scoring="utility"`` (the default), ``0 < alpha < 1``: ``expected_accuracy - price *
      expected_cost`` (``ln(expected_cost)`` with ``cost_scale="log"``), the price in accuracy
      per USD that alpha sets from the router's fitted ``log_prices_``. Dear models often score
      below 0 (``0.91 - 327 * 0.0146 = -3.85``); a difference of 0.01 is one accuracy point.
    * ``scoring="utility"``, ``alpha = 1``: ``expected_accuracy``; ``alpha = 0``: ``-expected_cost``
      (about ``-0.0001`` for every model: only the order matters).
    * ``scoring="minmax"`` (the paper's): the sum over the nearest clusters of
      ``alpha * acc~ + (1 - alpha) * (1 - cost~)``, each term min-max normalised over the
      candidates, so between 0 and ``nearest_clusters``.
    """
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
    """Every candidate, best first (the chosen one; then by score, cheaper first on ties).
    ``avengers route`` prints them with each score relative to the chosen one."""
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


def decide(
    batch: BatchScores,
    alpha: float,
    nearest_clusters: int,
    nearest: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_cluster_rows: int,
) -> RoutingDecision:
    """The decision for the one query of ``batch``: the pick, every candidate, the clusters.

    Args:
        batch: Scores of one query.
        alpha: The checked alpha.
        nearest_clusters: How many nearest clusters were read.
        nearest: The query's nearest cluster rows, similarities and weights.
        n_cluster_rows: Cluster rows of the router (higher rows are the pool row).
    """
    scores = batch.scores(alpha)[0]
    order = rank(scores, batch.expected_cost[0], first=int(batch.choose(alpha)[0]))
    clusters, sims, weights = nearest
    return RoutingDecision(
        model=batch.models[order[0]],
        alpha=alpha,
        nearest_clusters=nearest_clusters,
        candidates=tuple(
            CandidateScore(
                model=batch.models[j],
                score=float(scores[j]),
                expected_accuracy=float(batch.expected_accuracy[0, j]),
                expected_cost=float(batch.expected_cost[0, j]),
            )
            for j in order
        ),
        clusters=tuple(
            ClusterMatch(cluster=int(c), similarity=float(s), weight=float(w))
            for c, s, w in zip(clusters[0], sims[0], weights[0], strict=True)
            if c < n_cluster_rows
        ),
    )
