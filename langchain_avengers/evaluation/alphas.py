"""What each alpha costs: a fitted router's expected accuracy and USD per 1,000 queries.

:func:`alpha_table` routes a set of queries at every alpha of a grid and averages, over the
queries, the chosen model's expected accuracy and cost: the router's own per-cluster estimates,
the numbers it routes on. The queries are either

- the router's own cluster centroids, each weighted by the calibration queries it holds: a
  stand-in for "queries like the calibration set" that needs nothing but the router file; or
- the queries of a records file. The chosen model's score and billed cost recorded in that file
  are then averaged too (the *measured* columns); when the router was fitted on the same file
  they are in-sample, so use held-out records (or ``avengers evaluate``) for an honest figure.

Needs no scikit-learn: only a fitted router (``avengers alphas ROUTER``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from langchain_avengers.records.data import CalibrationData
from langchain_avengers.routing.params import check_alpha
from langchain_avengers.routing.router import ClusterRouter

__all__ = ["DEFAULT_TABLE_ALPHAS", "AlphaPoint", "AlphaTable", "alpha_table", "format_usd"]

DEFAULT_TABLE_ALPHAS: tuple[float, ...] = tuple(i / 10 for i in range(11))
_PER_1K = 1000.0


@dataclass(frozen=True)
class AlphaPoint:
    """The router's choices at one alpha, averaged over the queries."""

    alpha: float
    expected_accuracy: float
    """Mean expected score of the chosen models (the router's estimates), in [0, 1]."""
    expected_cost: float
    """Expected USD per 1,000 queries (the router's estimates)."""
    shares: dict[str, float]
    """Share of the queries each model is chosen for (models never chosen are left out)."""
    measured_accuracy: float | None = None
    """Mean recorded score of the chosen models, over queries where it was measured."""
    measured_cost: float | None = None
    """Mean recorded USD per 1,000 queries, over queries where the cost is known."""
    measured_queries: int | None = None
    """Queries whose chosen model has a recorded score."""

    def top_model(self) -> tuple[str, float]:
        """The model chosen most often and its share."""
        model = max(self.shares, key=lambda m: (self.shares[m], m))
        return model, self.shares[model]


@dataclass(frozen=True)
class AlphaTable:
    """Expected (and, with records, measured) accuracy and cost per alpha."""

    points: tuple[AlphaPoint, ...]
    basis: str
    """What the figures are computed on, in words."""
    n_queries: int
    """Queries (or centroids) routed."""
    models: tuple[str, ...]
    """The candidate models."""
    measured: bool = False
    """Whether the points carry measured figures (a records file was given)."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def table(self) -> str:
        """A plain-text table, one row per alpha."""
        header = ["alpha", "expected accuracy", "expected $ / 1k queries"]
        if self.measured:
            header += ["measured accuracy", "measured $ / 1k"]
        header.append("most chosen model (share)")
        rows = [header]
        for p in self.points:
            model, share = p.top_model()
            row = [f"{p.alpha:g}", f"{100 * p.expected_accuracy:.1f}%", format_usd(p.expected_cost)]
            if self.measured:
                row += [
                    "n/a" if p.measured_accuracy is None else f"{100 * p.measured_accuracy:.1f}%",
                    "n/a" if p.measured_cost is None else format_usd(p.measured_cost),
                ]
            row.append(f"{model} ({share:.0%})")
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "basis": self.basis,
            "n_queries": self.n_queries,
            "models": list(self.models),
            "notes": list(self.notes),
            "points": [asdict(p) for p in self.points],
        }


def format_usd(value: float) -> str:
    """Dollars with three significant digits and at least two decimals: ``$0.0290``, ``$12.02``."""
    if not math.isfinite(value):
        return "n/a"
    if value <= 0:
        return "$0.00"
    decimals = max(2, 2 - math.floor(math.log10(value)))
    return f"${value:.{decimals}f}"


def alpha_table(
    router: ClusterRouter,
    alphas: Sequence[float] = DEFAULT_TABLE_ALPHAS,
    *,
    data: CalibrationData | None = None,
    allowed_models: Sequence[str] | None = None,
) -> AlphaTable:
    """Route a set of queries at every alpha and average what the router expects.

    Args:
        router: A fitted router.
        alphas: The alphas to tabulate, each in [0, 1].
        data: Records whose queries to route (and whose recorded scores and costs to average
            for the chosen models); ``None`` routes the router's cluster centroids, weighted
            by their calibration queries.
        allowed_models: Restrict the candidate models, as in :meth:`ClusterRouter.route`.

    Returns:
        One point per alpha, in the order given.

    Raises:
        ValueError: An alpha outside [0, 1], an unknown model, or records without queries.
    """
    alphas = [check_alpha(alpha) for alpha in alphas]
    if data is None:
        vectors: Any = router.cluster_centers_
        sizes = np.asarray(router.cluster_sizes_, dtype=float)
        weights = sizes / sizes.sum()
        n_fits = len(router.cluster_counts_)
        basis = (
            f"the router's {len(vectors)} cluster centroids ({n_fits} k-means fits), each "
            f"weighted by its share of the {router.n_samples_fit_:,} calibration queries: "
            "queries like the calibration set"
        )
    else:
        if not len(data.queries):
            msg = "records: no queries to route"
            raise ValueError(msg)
        vectors = list(data.queries)
        weights = np.full(len(vectors), 1.0 / len(vectors))
        basis = f"{len(vectors):,} queries of the records"
    batch = router.score_batch(vectors, allowed_models=allowed_models)
    rows = np.arange(len(weights))
    measured_scores = measured_costs = None
    if data is not None:
        measured_scores, measured_costs = _recorded(data, batch.models)
    points = []
    for alpha in alphas:
        chosen = batch.choose(alpha)
        shares: dict[str, float] = {}
        for j, model in enumerate(batch.models):
            share = float(weights[chosen == j].sum())
            if share > 0:
                shares[model] = share
        point = AlphaPoint(
            alpha=float(alpha),
            expected_accuracy=float(weights @ batch.expected_accuracy[rows, chosen]),
            expected_cost=_PER_1K * float(weights @ batch.expected_cost[rows, chosen]),
            shares=shares,
        )
        if measured_scores is not None and measured_costs is not None:
            scores = measured_scores[rows, chosen]
            costs = measured_costs[rows, chosen]
            mean_cost = _mean(costs)
            point = replace(
                point,
                measured_accuracy=_mean(scores),
                measured_cost=None if mean_cost is None else _PER_1K * mean_cost,
                measured_queries=int(np.isfinite(scores).sum()),
            )
        points.append(point)
    notes: tuple[str, ...] = ()
    if data is not None:
        notes = (
            "measured = the chosen model's score and billed cost recorded in the file, over the "
            "queries where it was measured; in-sample if the router was fitted on this file",
        )
    return AlphaTable(
        points=tuple(points),
        basis=basis,
        n_queries=len(weights),
        models=tuple(batch.models),
        measured=data is not None,
        notes=notes,
    )


def _recorded(data: CalibrationData, models: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The records' scores and costs in the router's candidate columns (NaN: not recorded)."""
    column = {m: i for i, m in enumerate(data.models)}
    scores = np.full((len(data.queries), len(models)), np.nan)
    costs = np.full((len(data.queries), len(models)), np.nan)
    for j, model in enumerate(models):
        if model in column:
            scores[:, j] = data.scores[:, column[model]]
            costs[:, j] = data.costs[:, column[model]]
    return scores, costs


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None
