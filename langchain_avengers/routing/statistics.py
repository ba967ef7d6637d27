"""Per-cluster statistics of a router, fitted from calibration data.

Every model's mean score and mean cost per query in every cluster, shrunk toward its pool-wide
mean. A query some model was not measured on counts, in that model's statistics, with the
model's expected value there (estimated from the models that were measured on it), so every
model's means cover the same queries.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from langchain_avengers._utils.warnings import user_stacklevel
from langchain_avengers.records.format import RecordsError
from langchain_avengers.routing.params import auto_n_clusters

PRIOR_QUERIES = 10
"""Pseudo-count of the prior on a model's accuracy where it was not measured: the advantage of
a model scored on ``n`` queries over the models scored on the same queries weighs ``n`` against
10 pseudo-queries at the weakest model's advantage. Fitting warns below this many scores."""
COST_PRIOR_QUERIES = 1.0
"""Pseudo-count of the prior on a model's cost ratio to the others where it was not measured
(:func:`expected_cost_ratio`): one query at ratio 1. Smaller than the accuracy prior's, as one
bill says far more about a model's price than one 0/1 score says about its accuracy; chosen
on held-out splits of both shared data sets (``benchmarks/sparse_models.py``)."""
MIN_MEDIAN_CLUSTER_SIZE = 5
"""Fitting warns below this median cluster size: half the 10 queries a cluster that
``n_clusters="auto"`` gives at 100 queries, the smallest size it was validated on."""


def cluster_means(
    values: np.ndarray,
    labels: np.ndarray,
    n_rows: int,
    shrinkage: float,
    what: str,
    logged_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pool-wide means, counts and (shrunk) cluster means of one statistic.

    ``labels`` has one row per k-means fit of the ensemble, indexing the ``n_rows`` stacked
    cluster rows. Means run over the queries with the statistic for some model, unmeasured
    cells filled with the model's expected value (:func:`fill_unmeasured`, within each fit's
    partition, averaged over the fits); ``shrinkage`` pseudo-queries at the pool-wide mean
    pull each cluster's mean toward it.

    ``logged_weights`` (``(n_queries, n_models)``, NaN except on the measured cell of a logged
    row, see :func:`importance_weights`) marks rows logged from a router's choices: they are
    left out of the filling (a logged row has no second model to compare with). Per cluster
    and model, the logged outcomes' inverse-propensity weighted mean (self-normalised IPS: the
    router's own past choices do not pull a model's mean toward the queries it was chosen on)
    joins the calibration queries counted as its effective sample size
    (:func:`_as_effective`), so scarce explored outcomes cannot swamp them.
    """
    labels = np.atleast_2d(labels)
    fits = []
    for row in labels:
        one = np.zeros((labels.shape[1], n_rows))
        one[np.arange(labels.shape[1]), row] = 1.0
        fits.append(one)
    onehot = np.sum(fits, axis=0)
    measured = ~np.isnan(values)
    counts = onehot.T @ measured.astype(float)
    logged = (
        np.zeros(len(values), dtype=bool)
        if logged_weights is None
        else ~np.isnan(logged_weights).all(axis=1)
    )
    calibration = np.where(logged[:, None], np.nan, values)
    covered = np.asarray((~np.isnan(calibration)).any(axis=1), dtype=bool)
    expected = np.mean([fill_unmeasured(calibration, one, what) for one in fits], axis=0)
    filled = np.where(covered[:, None], expected, 0.0)
    sums = onehot.T @ filled
    rows = np.repeat((onehot.T @ covered.astype(float))[:, None], values.shape[1], axis=1)
    pool_sum, pool_rows = filled.sum(axis=0), np.full(values.shape[1], float(covered.sum()))
    if logged.any():
        assert logged_weights is not None
        weight = np.where(logged[:, None] & measured, np.nan_to_num(logged_weights), 0.0)
        weighted = weight * np.nan_to_num(values)
        log_sums, log_rows = _as_effective(
            onehot.T @ weighted, onehot.T @ weight, onehot.T @ weight**2
        )
        sums, rows = sums + log_sums, rows + log_rows
        pool_log_sum, pool_log_rows = _as_effective(
            weighted.sum(axis=0), weight.sum(axis=0), (weight**2).sum(axis=0)
        )
        pool_sum, pool_rows = pool_sum + pool_log_sum, pool_rows + pool_log_rows
    with np.errstate(invalid="ignore", divide="ignore"):
        pool_mean = np.where(pool_rows > 0, pool_sum / pool_rows, np.nan)
    prior = shrinkage * pool_mean
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums + prior) / (rows + shrinkage)
    means = np.where(rows + shrinkage > 0, means, pool_mean)
    return pool_mean, counts.astype(np.int64), means


def _as_effective(
    weighted_sum: np.ndarray, weight_sum: np.ndarray, square_sum: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Logged outcomes as ``ESS`` queries at their inverse-propensity weighted mean.

    The weighted mean ``sum(w r) / sum(w)`` is the self-normalised IPS estimate; it counts as
    ``(sum w)^2 / sum(w^2)`` queries (its effective sample size), so a few explored outcomes
    with large weights move a cluster's mean as much as the few queries they are, not as much
    as the whole log they stand for. Returns ``(ESS * mean, ESS)``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(square_sum > 0, weight_sum / square_sum, 0.0)
    return weighted_sum * scale, weight_sum * scale


DEFAULT_MAX_WEIGHT = 100.0
"""Largest inverse-propensity weight a logged outcome gets when fitting (1 / propensity is
clipped here), so one outcome logged with a tiny propensity (explore=0.01 over 20 models:
0.0005) cannot carry a cluster alone. Exploring with probability 0.1 over 11 models gives
weights up to 110: with the effective-sample-size counting of :func:`cluster_means`, clipping
those at 20 fitted no better routers than leaving them (``benchmarks/off_policy.py``)."""


def importance_weights(
    propensities: np.ndarray | None, max_weight: float = DEFAULT_MAX_WEIGHT
) -> np.ndarray | None:
    """``min(1 / propensity, max_weight)`` on the logged cells, NaN elsewhere; ``None`` if none.

    Raises:
        ValueError: ``max_weight`` below 1 (a weight below 1 would count a logged outcome as
            less than one query).
    """
    if not max_weight >= 1.0:
        msg = f"max_weight must be at least 1, got {max_weight!r}"
        raise ValueError(msg)
    if propensities is None or np.isnan(propensities).all():
        return None
    with np.errstate(divide="ignore"):
        return np.minimum(1.0 / propensities, max_weight)


def require_measured(models: Sequence[str], values: np.ndarray, what: str) -> None:
    """Refuse data in which some model has no measured ``what`` (score or cost) at all."""
    has_any = (~np.isnan(values)).any(axis=0)
    missing = [m for m, seen in zip(models, has_any, strict=True) if not seen]
    if missing:
        field = "records" if what == "score" else "usages.<model>.cost"
        msg = (
            f"calibration data: model(s) {missing} have no {what} in any record "
            f"(field '{field}'); a router needs a score and a cost for every model"
        )
        raise RecordsError(msg)


def fill_unmeasured(values: np.ndarray, onehot: np.ndarray, what: str) -> np.ndarray:
    """``values`` with every unmeasured cell of a query some model was measured on filled.

    The fill is the model's expected value on that query, from the other models measured on
    it. For scores: their mean score plus the model's advantage over them
    (:func:`expected_advantage`), clipped to [0, 1]. For costs: their mean cost times the
    model's expected cost ratio to them (:func:`expected_cost_ratio`). Rows nobody was
    measured on stay NaN.
    """
    measured = ~np.isnan(values)
    if measured.all():
        return values
    own = np.where(measured, values, 0.0)
    n_others = measured.sum(axis=1, keepdims=True) - measured
    others = np.full_like(own, np.nan)
    np.divide(own.sum(axis=1, keepdims=True) - own, n_others, out=others, where=n_others > 0)
    paired = measured & (n_others > 0)
    if what == "score":
        gaps = np.where(paired, own - others, 0.0)
        expected = np.clip(others + onehot @ expected_advantage(gaps, paired, onehot), 0.0, 1.0)
    else:
        expected = others * expected_cost_ratio(own, others, paired)
    return np.where(measured, values, expected)


def expected_cost_ratio(own: np.ndarray, others: np.ndarray, paired: np.ndarray) -> np.ndarray:
    """``(n_models,)`` expected ratio of each model's cost to the others' mean cost.

    The ratio of the model's total cost to theirs over the queries it shares with them,
    shrunk geometrically toward 1 (the others' mean) with :data:`COST_PRIOR_QUERIES`
    pseudo-queries: ``ratio ** (n / (n + 1))`` after ``n`` shared queries. A ratio of 0 (all
    its answers billed $0) counts as a tenth of the cheapest paid model's ratio first, so one
    answer billed $0 does not make a model free everywhere (it took every query at alpha 0);
    a model billed $0 on many queries does come out cheapest. Geometric, because costs differ
    by factors: a pull toward 1 on the linear scale hid a model 20 times cheaper than the
    others' mean behind 20 measured queries (``benchmarks/sparse_models.md``).
    """
    own_total = np.where(paired, own, 0.0).sum(axis=0)
    their_total = np.where(paired, others, 0.0).sum(axis=0)
    n_paired = paired.sum(axis=0)
    raw = np.divide(own_total, their_total, out=np.ones_like(own_total), where=their_total > 0)
    paid = raw[(raw > 0) & (n_paired > 0)]
    floor = float(paid.min()) / 10 if paid.size else 1e-3
    share = n_paired / (n_paired + COST_PRIOR_QUERIES)
    return np.asarray(np.exp(share * np.log(np.maximum(raw, floor))))


def expected_advantage(gaps: np.ndarray, paired: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """``(n_clusters, n_models)`` expected score gap of each model to the others' mean.

    The model's mean gap in the cluster with :data:`PRIOR_QUERIES` pseudo-queries at its
    pool-wide gap, which itself has :data:`PRIOR_QUERIES` pseudo-queries at the weakest
    model's gap in that cluster: a model measured on few queries counts as the weakest.
    """
    k = PRIOR_QUERIES
    cluster_gaps, cluster_n = onehot.T @ gaps, onehot.T @ paired
    with np.errstate(invalid="ignore", divide="ignore"):
        weakest = np.where(cluster_n > 0, cluster_gaps / cluster_n, np.inf).min(axis=1)
    pool_n = paired.sum(axis=0)
    compared = pool_n > 0  # no model measured beside another: no advantage is known
    pool_weakest = (gaps.sum(axis=0)[compared] / pool_n[compared]).min() if compared.any() else 0.0
    weakest = np.where(np.isfinite(weakest), weakest, pool_weakest)[:, None]
    prior = (gaps.sum(axis=0) + k * weakest) / (pool_n + k)
    return (cluster_gaps + k * prior) / (cluster_n + k)


def warn_if_one_model(models: Sequence[str]) -> None:
    """A router over one model has nothing to choose: say so rather than route silently."""
    if len(models) == 1:
        warnings.warn(
            f"calibration data: one model ({models[0]}) has scores, so the router always "
            "picks it; calibrate at least two models to route",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def warn_if_barely_measured(models: Sequence[str], n_scored: np.ndarray, n_samples: int) -> None:
    """One warning naming the models scored on fewer than :data:`PRIOR_QUERIES` queries.

    A model scored on every query keeps its plain means, however few the queries (the small
    cluster warning speaks for a small file), so only the partly measured ones are named.
    """
    few = [
        f"{m} ({n} scored)"
        for m, n in zip(models, n_scored, strict=True)
        if n < min(PRIOR_QUERIES, n_samples)
    ]
    if few:
        warnings.warn(
            f"calibration data: model(s) {', '.join(few)} have a score on fewer than "
            f"{PRIOR_QUERIES} calibration queries: their statistics are mostly estimated "
            "from the other models measured on the same queries; measure them on more queries",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def warn_if_clusters_are_small(
    sizes: np.ndarray, counts: np.ndarray, n_clusters: int, n_samples: int
) -> None:
    """One warning when the median cluster holds fewer queries than statistics need.

    The median is over the ensemble's fit closest to ``n_clusters`` clusters (``counts``
    clusters per fit, their ``sizes`` stacked fit after fit).
    """
    base = int(np.argmin(np.abs(counts - n_clusters)))
    start = int(counts[:base].sum())
    median = float(np.median(sizes[start : start + counts[base]]))
    if median >= MIN_MEDIAN_CLUSTER_SIZE:
        return
    auto = auto_n_clusters(n_samples)
    advice = "give more calibration data"
    if n_clusters > auto:
        advice = f"use n_clusters='auto' ({auto} clusters for {n_samples} queries) or {advice}"
    warnings.warn(
        f"{n_clusters} cluster(s) of {n_samples} calibration queries hold a median of "
        f"{median:g} queries each (fewer than {MIN_MEDIAN_CLUSTER_SIZE}): per-cluster accuracy "
        f"and cost are then mostly noise; {advice}",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
