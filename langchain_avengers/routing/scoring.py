"""Pieces of the router beyond the paper's recipe: k-means ensembles and the utility score.

Ensemble: k-means is fitted once per scale in ``cluster_scales`` (``round(scale * k)``
clusters each) and a query's expected accuracy and cost are the mean over the fits of the
nearest-clusters clusters' statistics. Averaging several partitions of the same queries smooths the
noise of small clusters without new assumptions (bandwidth averaging).

Utility score: ``expected accuracy - price * expected cost``, with the price of one USD in
accuracy set by alpha. For any fixed price, choosing each query's best utility gives the most
accurate routing for its total spend (a Lagrangian relaxation of "best accuracy within a
budget"), so unlike a per-cluster min-max it keeps accuracy gaps and cost gaps at their real
size. Alpha maps to prices through the router's own decisions: the prices at which the best
choice of a calibration query changes (its "breakpoints") are collected at fit, and alpha in
(0, 1) walks their quantiles from the highest to the lowest, so alpha = 0.5 is the price at
which half of the router's upgrades to a dearer model have happened. alpha = 1 is accuracy
only and alpha = 0 cost only, as with the paper's score.

Also the numeric steps routing shares between both scores: each fit's nearest clusters and
their weights, per-row min-max normalisation, the log-cost floor and the display order.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

PRICE_QUANTILES = 101
"""Points of the alpha -> log price table stored in a fitted router (alpha step 0.01)."""


def hull_breakpoints(accuracy: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Log prices at which each row's utility-best column changes, over all rows.

    For one query, the choices that some price makes best are the upper-left convex hull of
    its (cost, accuracy) points; the price at which the choice moves from one hull point to
    the next is the slope between them. Identical rows (queries sharing their clusters) are
    computed once and counted as often as they occur.
    """
    rows, counts = np.unique(np.hstack([accuracy, cost]), axis=0, return_counts=True)
    m = accuracy.shape[1]
    out: list[float] = []
    for row, count in zip(rows, counts, strict=True):
        slopes = _hull_slopes(row[:m], row[m:])
        out.extend(np.repeat(np.log(slopes), count))
    return np.asarray(out, dtype=float)


def _hull_slopes(accuracy: np.ndarray, cost: np.ndarray) -> np.ndarray:
    hull: list[int] = []
    for j in np.lexsort((-accuracy, cost)):  # cheapest first, the more accurate on equal cost
        if hull and accuracy[j] <= accuracy[hull[-1]]:
            continue  # costs at least as much for no more accuracy: never chosen
        while len(hull) >= 2 and _slope(hull[-2], hull[-1], accuracy, cost) <= _slope(
            hull[-1], j, accuracy, cost
        ):
            hull.pop()
        hull.append(j)
    return np.array([_slope(a, b, accuracy, cost) for a, b in itertools.pairwise(hull)])


def _slope(a: int, b: int, accuracy: np.ndarray, cost: np.ndarray) -> float:
    span = cost[b] - cost[a]
    return float("inf") if span <= 0 else float((accuracy[b] - accuracy[a]) / span)


def price_schedule(breakpoints: np.ndarray) -> np.ndarray:
    """Log price at alpha = 0, 0.01, ..., 1: the breakpoints' quantiles, highest first.

    With no breakpoint (one model is both the cheapest and the most accurate everywhere),
    every price gives the same choices and the table is flat at price 1.
    """
    finite = breakpoints[np.isfinite(breakpoints)]
    if not finite.size:
        return np.zeros(PRICE_QUANTILES)
    return np.quantile(finite, np.linspace(1.0, 0.0, PRICE_QUANTILES))


def utility_weights(alpha: float, log_prices: np.ndarray) -> tuple[float, float]:
    """Weights of (expected accuracy, minus expected cost) in the utility at ``alpha``."""
    if alpha >= 1.0:
        return 1.0, 0.0
    if alpha <= 0.0:
        return 0.0, 1.0
    grid = np.linspace(0.0, 1.0, len(log_prices))
    return 1.0, float(np.exp(np.interp(alpha, grid, log_prices)))


def find_nearest_clusters(
    vectors: np.ndarray,
    centers: np.ndarray,
    counts: Sequence[int] | np.ndarray,
    nearest_clusters: int,
    *,
    weighting: str,
    beta: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest-clusters cluster indices, similarities and weights; a zero vector gets the pool row.

    Each k-means fit of the ensemble (``counts`` clusters each, their ``centers`` stacked)
    contributes its own nearest-clusters clusters (at most its cluster count) with weights summing
    to
    ``nearest_clusters / n_fits``, so a single fit weighs each cluster 1 as in the paper. The pool
    row
    (the row after the clusters) holds pool-wide statistics, so a query with no embeddable
    text is routed on what is known about the whole calibration set.
    """
    sims = vectors @ centers.T
    found = []
    start = 0
    for count in counts:
        top, top_sims = top_k(sims[:, start : start + count], min(nearest_clusters, int(count)))
        weights = cluster_weights(
            top_sims, nearest_clusters / len(counts), weighting=weighting, beta=beta
        )
        found.append((top + start, top_sims, weights))
        start += int(count)
    top, top_sims, weights = (np.hstack(arrays) for arrays in zip(*found, strict=True))
    top[~np.any(vectors, axis=1)] = len(centers)
    return top, top_sims, weights


def cluster_weights(
    top_sims: np.ndarray, share: float, *, weighting: str, beta: float
) -> np.ndarray:
    """Weights of one fit's nearest clusters, summing to ``share`` per query.

    Equal (``"uniform"``, the paper) or ``softmax(beta * similarity)`` (``"softmax"``).
    """
    if weighting == "softmax":
        weights = np.exp(beta * (top_sims - top_sims[:, :1]))
    else:
        weights = np.ones_like(top_sims)
    return weights * (share / weights.sum(axis=1, keepdims=True))


def top_k(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``k`` largest entries, largest first."""
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_sims, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)


def minmax_rows(table: np.ndarray, constant: float) -> np.ndarray:
    """Min-max normalise each row; a row whose values are all equal becomes ``constant``."""
    low = table.min(axis=1, keepdims=True)
    span = table.max(axis=1, keepdims=True) - low
    out = np.full_like(table, constant, dtype=float)
    np.divide(table - low, span, out=out, where=span > 0)
    return out


def cost_floor(cost: np.ndarray) -> float:
    """Smallest cost worth telling apart on a log scale: a tenth of the cheapest paid cost."""
    positive = cost[cost > 0]
    return float(positive.min()) / 10 if positive.size else 1e-12


def rank(scores: np.ndarray, costs: np.ndarray, *, first: int) -> np.ndarray:
    """Candidate order for display: the chosen one, then by score (cheaper first on ties)."""
    order = np.lexsort((costs, -scores))
    return np.concatenate([[first], order[order != first]])


NORM_CACHE_SIZE = 256
"""Candidate sets whose tables a router keeps (an LRU), so varied ``allowed_models`` lists
cannot grow memory."""


_TABLES_LOCK = threading.Lock()  # module-wide, so routers stay copyable


class CandidateTables:
    """A fitted router's accuracy and cost tables per candidate set, raw and normalised.

    Kept for the last :data:`NORM_CACHE_SIZE` candidate sets used (thread-safe).
    """

    def __init__(self) -> None:
        self._tables: OrderedDict[tuple[Any, ...], tuple[np.ndarray, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tables)

    def get(self, router: Any, candidates: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        """``(accuracy, cost, accuracy normalised, cost normalised)`` among ``candidates``.

        Rows are the clusters plus the pool row, columns the candidates.
        """
        key = (router.cost_scale, *candidates)
        with _TABLES_LOCK:
            tables = self._tables.get(key)
            if tables is not None:
                self._tables.move_to_end(key)
                return tables
        columns = list(candidates)
        accuracy = np.vstack([router.accuracy_, router.global_accuracy_[None, :]])[:, columns]
        cost = np.vstack([router.cost_, router.global_cost_[None, :]])[:, columns]
        log = router.cost_scale == "log"
        scaled = np.log(np.maximum(cost, cost_floor(cost))) if log else cost
        tables = (accuracy, cost, minmax_rows(accuracy, 1.0), minmax_rows(scaled, 0.0))
        with _TABLES_LOCK:
            self._tables[key] = tables
            while len(self._tables) > NORM_CACHE_SIZE:
                self._tables.popitem(last=False)
        return tables
