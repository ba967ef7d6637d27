"""The Avengers-Pro cluster router (Zhang et al., arXiv 2508.12631).

Fitting: embed the calibration queries, k-means them, and keep every model's mean score and
mean cost per query in every cluster. Routing: embed the query, take its ``top_p`` nearest
clusters, min-max normalise accuracy and cost among the candidate models in each cluster, score
``alpha * acc~ + (1 - alpha) * (1 - cost~)``, sum over the clusters and pick the best model.

That is the paper's recipe (``scoring="minmax", cluster_scales=(1.0,)``). The default instead
averages several k-means fits and scores ``expected accuracy - price(alpha) * expected cost``
(:mod:`langchain_avengers._scoring`), chosen on inner validation splits
(``benchmarks/select_quality.py``).
"""

from __future__ import annotations

import asyncio
import functools
import numbers
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_avengers._estimator import Estimator, check_fitted
from langchain_avengers._scoring import (
    ensemble_counts,
    fit_kmeans_ensemble,
    hull_breakpoints,
    price_schedule,
    utility_weights,
)
from langchain_avengers.embeddings import (
    WordLlamaEmbeddings,
    bounded_text,
    embed_texts,
    embedder_identity,
    normalize_rows,
)
from langchain_avengers.records import CalibrationData, CalibrationRecord, RecordsError

__all__ = [
    "CandidateScore",
    "ClusterMatch",
    "ClusterRouter",
    "RoutingDecision",
    "auto_n_clusters",
]

RecordsLike = CalibrationData | Sequence[CalibrationRecord] | str | Path
_TIE_TOLERANCE = 1e-9
NORM_CACHE_SIZE = 256
"""Candidate sets (``allowed_models``) whose normalised tables a router keeps, least recently
used dropped first: four ``(n_clusters_ + 1, n_candidates)`` float tables each, so about 10 MB
at most for 60 clusters and 20 models, however many distinct sets are routed."""
_NormCache = OrderedDict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
_NORM_CACHE_LOCK = threading.Lock()

AUTO_MIN_CLUSTERS = 2
AUTO_MAX_CLUSTERS = 60
"""The paper's k, which ``n_clusters="auto"`` reaches at about 3,500 calibration queries."""
MIN_MEDIAN_CLUSTER_SIZE = 5
"""Fitting warns below this median cluster size: half the 10 queries a cluster that
``n_clusters="auto"`` gives at 100 queries, the smallest size it was validated on."""
PRIOR_QUERIES = 10
"""Pseudo-count of the prior on a model's accuracy where it was not measured: the advantage of
a model scored on ``n`` queries over the models scored on the same queries weighs ``n`` against
10 pseudo-queries at the weakest model's advantage. Fitting warns below this many scores."""


def auto_n_clusters(n_samples: int) -> int:
    """The number of clusters ``n_clusters="auto"`` fits on ``n_samples`` calibration queries.

    ``round(sqrt(n))``, at least 2 and at most 60 (and never more than ``n_samples``): 10
    clusters for 100 queries, 12 for 150, 24 for 600, 60 from about 3,500. Chosen on inner
    validation splits against fixed 60 and other rules, see ``benchmarks/select_n_clusters.py``.
    """
    k = int(np.floor(np.sqrt(n_samples) + 0.5))
    return max(1, min(n_samples, AUTO_MAX_CLUSTERS, max(AUTO_MIN_CLUSTERS, k)))


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
    top_p: int
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
        tied = scores >= best - _TIE_TOLERANCE
        return np.where(tied, self.expected_cost, np.inf).argmin(axis=1)


class ClusterRouter(Estimator):
    """Routes each query to one model of a pool, trading accuracy for cost with ``alpha``.

    A query a model was not measured on counts, in that model's statistics, with the model's
    expected score and cost there, so every model's means cover the same queries (as min-max
    normalisation across models assumes). The expected score is the mean score of the other
    models measured on that query plus the model's advantage over them in that cluster, with
    10 pseudo-queries at its pool-wide advantage, which itself has 10 pseudo-queries at the
    weakest model's advantage in the cluster: a barely measured model counts as the weakest
    until its scores say otherwise. The expected cost is the others' mean cost times the
    model's cost ratio to them. A model measured on every query keeps its raw means (the
    paper); one measured on a single query cannot take over routing with its one score.
    Fitting warns about models scored on fewer than 10 queries.

    Parameters
    ----------
    n_clusters : int or "auto", default="auto"
        Number of k-means clusters of the calibration queries (the paper's k). ``"auto"``
        follows the data size: ``round(sqrt(n))`` clipped to [2, 60] (:func:`auto_n_clusters`),
        so 150 queries give 12 clusters, 600 give 24 and about 3,500 or more the paper's 60.
        Chosen on inner validation splits of both shared data sets subsampled to 100 to
        1,743 queries, where it ranked first of seven rules on AIQ, cost-to-95% and
        acc@best-cost (fixed 60 ranked sixth), and on 150 queries it sent 5% of queries at
        alpha = 1 to a model worse on every task family, against 49% with 60 clusters
        (RouterBench; ``benchmarks/select_n_clusters.py``, ``benchmarks/SELECTION.md``).
        Fitting warns when the clusters hold a median of fewer than 5 queries.
    top_p : int, default=4
        Nearest clusters whose scores are summed when routing (the paper's p); clamped at
        fit to the number of clusters (``top_p_``), and per k-means fit of the ensemble to
        its cluster count.
    embedder : Embeddings, default=None
        Any LangChain embeddings; ``None`` uses :class:`WordLlamaEmbeddings` (offline).
    scoring : {"utility", "minmax"}, default="utility"
        How a model's expected accuracy and cost become a score. ``"utility"``: expected
        accuracy minus a price times expected cost (USD per query), the price falling from
        "any saving wins" at alpha = 0 to "accuracy only" at alpha = 1 through the prices at
        which the router's choices for its calibration queries change (quantiles of those
        breakpoints, fitted as ``log_prices_``), so accuracy and cost gaps keep their real
        size and alpha moves evenly through the router's decisions. ``"minmax"``: the
        paper's ``alpha * acc~ + (1 - alpha) * (1 - cost~)`` with both min-max normalised
        per cluster among the candidates, which turns a tiny accuracy gap into a full point.
        Chosen on inner validation splits: ``benchmarks/select_quality.py``.
    cluster_scales : sequence of float, default=(0.5, 1.0, 2.0)
        One k-means fit per scale, with ``round(scale * n_clusters_)`` clusters; a query's
        expected accuracy and cost are the mean over the fits of its top-p clusters'
        statistics. Averaging partitions of several sizes smooths the noise of small
        clusters (it helped most on 150-600 calibration queries); ``(1.0,)`` is the paper's
        single fit. Chosen on inner validation splits: ``benchmarks/select_quality.py``.
    cost_scale : {"linear", "log"}, default="linear"
        Score the mean cost itself (default; the total bill is what adds up over queries)
        or its logarithm. With ``scoring="minmax"``, ``"log"`` keeps cheap models apart
        when one model costs orders of magnitude more (``benchmarks/select_defaults.py``).
    cluster_weights : {"uniform", "softmax"}, default="uniform"
        Sum the top-p clusters equally (the paper) or weight them by
        ``softmax(beta * cosine similarity)`` (the reference code), rescaled to sum to top_p.
    beta : float, default=9.0
        Softmax sharpness for ``cluster_weights="softmax"``.
    shrinkage : float, default=10.0
        Pseudo-count pulling small clusters' statistics toward the model's pool-wide mean
        (a cluster of n queries weighs n / (n + shrinkage) of its own mean); 0 uses raw cluster
        means (the paper). The ensemble's finest fit has clusters of a dozen queries or fewer,
        where raw means are mostly noise. Chosen on inner validation splits
        (``benchmarks/select_quality.py``), where it ranked first and held up best on 150 and
        600 calibration queries.
    n_init : int, default=4
        k-means restarts, per fit of the ensemble.
    random_state : int or None, default=0
        Seed of k-means.
    show_progress : bool, default=False
        Progress bar while embedding (only on a terminal).

    Attributes:
    ----------
    n_clusters_ : int
        Number of clusters fitted (``n_clusters``, or the automatic choice).
    top_p_ : int
        Nearest clusters used when routing: ``min(top_p, n_clusters_)``.
    models_ : list of str
        Model ids, the columns of the statistics.
    cluster_counts_ : ndarray of shape (n_fits,)
        Clusters of each k-means fit of the ensemble (one per ``cluster_scales`` entry);
        the rows of the cluster tables below are the fits' clusters, fit after fit.
    cluster_centers_ : ndarray of shape (sum(cluster_counts_), n_features)
        Unit-norm k-means centroids.
    accuracy_ : ndarray of shape (sum(cluster_counts_), n_models)
        Mean score of each model on each cluster's queries.
    cost_ : ndarray of shape (sum(cluster_counts_), n_models)
        Mean USD per query of each model on each cluster's queries.
    n_scored_ : ndarray of shape (sum(cluster_counts_), n_models)
        Queries with a measured score, per cluster and model.
    n_costed_ : ndarray of shape (sum(cluster_counts_), n_models)
        Queries with a known cost, per cluster and model.
    cluster_sizes_ : ndarray of shape (sum(cluster_counts_),)
        Calibration queries per cluster.
    log_prices_ : ndarray of shape (101,)
        Log price of one USD (per query) in accuracy at alpha = 0, 0.01, ..., 1, used by
        ``scoring="utility"`` (of log cost when ``cost_scale="log"``).
    global_accuracy_, global_cost_ : ndarray of shape (n_models,)
        Pool-wide mean score and cost per query of each model.
    n_features_in_ : int
        Embedding dimension.
    embedder_id_ : str
        Identity of the embedder the router was fitted with.
    data_fingerprint_ : str
        Hash of the calibration data.
    n_samples_fit_ : int
        Calibration queries used.

    Examples:
    --------
    >>> router = ClusterRouter().fit("calibration.jsonl")  # doctest: +SKIP
    >>> router.route("Prove that sqrt(2) is irrational", alpha=0.7).model  # doctest: +SKIP
    'google/gemini-2.5-pro'
    """

    def __init__(
        self,
        n_clusters: int | Literal["auto"] = "auto",
        top_p: int = 4,
        *,
        embedder: Embeddings | None = None,
        scoring: Literal["utility", "minmax"] = "utility",
        cluster_scales: Sequence[float] = (0.5, 1.0, 2.0),
        cost_scale: Literal["linear", "log"] = "linear",
        cluster_weights: Literal["uniform", "softmax"] = "uniform",
        beta: float = 9.0,
        shrinkage: float = 10.0,
        n_init: int = 4,
        random_state: int | None = 0,
        show_progress: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.top_p = top_p
        self.embedder = embedder
        self.scoring = scoring
        self.cluster_scales = cluster_scales
        self.cost_scale = cost_scale
        self.cluster_weights = cluster_weights
        self.beta = beta
        self.shrinkage = shrinkage
        self.n_init = n_init
        self.random_state = random_state
        self.show_progress = show_progress

    # ------------------------------------------------------------------ fitting

    def fit(self, records: RecordsLike, *, embeddings: np.ndarray | None = None) -> ClusterRouter:
        """Cluster the calibration queries and learn every model's accuracy and cost per cluster.

        Args:
            records: Calibration data: a JSONL path (read with
                :meth:`~langchain_avengers.records.CalibrationData.from_path`, so answers
                with tokens but no cost are priced from the ``"auto"`` catalog; load the
                file yourself to choose another), validated records or
                :class:`~langchain_avengers.records.CalibrationData`.
            embeddings: Optional precomputed ``(n_queries, n_features)`` embeddings of the
                queries, made with this router's embedder.

        Returns:
            The fitted router.
        """
        data = as_calibration_data(records)
        n_clusters, top_p = self._validate_params(len(data))
        # checked before any fitted attribute changes, so a failed refit leaves the router as
        # it was (and before paying for embeddings)
        _require_measured(data.models, data.scores, "score")
        _require_measured(data.models, data.costs, "cost")
        self._norm_cache: _NormCache = OrderedDict()
        vectors = self._fit_embeddings(data, embeddings)
        counts = ensemble_counts(n_clusters, self.cluster_scales, len(data))
        centers, labels = fit_kmeans_ensemble(vectors, counts, self.n_init, self.random_state)
        self.n_clusters_ = n_clusters
        self.top_p_ = top_p
        self.models_ = list(data.models)
        self.cluster_counts_ = np.asarray(counts, dtype=np.int64)
        self.cluster_centers_ = normalize_rows(centers)
        self.cluster_sizes_ = np.bincount(labels.ravel(), minlength=len(centers))
        self.global_accuracy_, self.n_scored_, self.accuracy_ = self._cluster_means(
            data.scores, labels, "score"
        )
        self.global_cost_, self.n_costed_, self.cost_ = self._cluster_means(
            data.costs, labels, "cost"
        )
        self.n_features_in_ = vectors.shape[1]
        self.embedder_id_ = embedder_identity(self.get_embedder())
        self.data_fingerprint_ = data.fingerprint()
        self.n_samples_fit_ = len(data)
        self.log_prices_ = self._fit_price_schedule(vectors)
        self._warn_if_clusters_are_small()
        # every query is in one cluster of each k-means fit: count it once
        _warn_if_barely_measured(self.models_, self.n_scored_.sum(axis=0) // len(counts))
        return self

    def _fit_price_schedule(self, vectors: np.ndarray) -> np.ndarray:
        """Alpha -> log price table from where the calibration queries' best choice changes."""
        all_models = tuple(range(len(self.models_)))
        batch = self._score_vectors(vectors, all_models, self.top_p_, parts=False)
        cost = self._cost_term(batch.expected_cost)
        return price_schedule(hull_breakpoints(batch.expected_accuracy, cost))

    def _validate_params(self, n_samples: int) -> tuple[int, int]:
        """Check the parameters for ``n_samples`` queries; the cluster count and top_p to fit."""
        auto = self.n_clusters == "auto"
        n_clusters = auto_n_clusters(n_samples) if auto else self.n_clusters
        checks = [
            (
                auto or (_is_int(n_clusters) and 1 <= int(n_clusters) <= n_samples),
                f"n_clusters must be 'auto' or an int in [1, {n_samples}] (the number of "
                f"calibration queries), got {self.n_clusters!r}; choose fewer clusters "
                "(n_clusters=..., avengers --n-clusters) or give more calibration data",
            ),
            (
                _is_int(self.top_p) and self.top_p >= 1,
                f"top_p must be an int >= 1 (clamped to the number of clusters), "
                f"got {self.top_p!r}",
            ),
            (
                self.cost_scale in ("linear", "log"),
                f"cost_scale must be 'linear' or 'log', got {self.cost_scale!r}",
            ),
            (
                self.scoring in ("utility", "minmax"),
                f"scoring must be 'utility' or 'minmax', got {self.scoring!r}",
            ),
            (
                _is_scale_list(self.cluster_scales),
                "cluster_scales must be a non-empty sequence of positive numbers (cluster "
                f"counts relative to n_clusters), got {self.cluster_scales!r}",
            ),
            (
                self.cluster_weights in ("uniform", "softmax"),
                f"cluster_weights must be 'uniform' or 'softmax', got {self.cluster_weights!r}",
            ),
            (self.shrinkage >= 0, f"shrinkage must be >= 0, got {self.shrinkage!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        return int(n_clusters), min(int(self.top_p), int(n_clusters))

    def _warn_if_clusters_are_small(self) -> None:
        """One warning when the median cluster holds fewer queries than statistics need."""
        median = float(np.median(self._base_fit_sizes()))
        if median >= MIN_MEDIAN_CLUSTER_SIZE:
            return
        n, k, auto = self.n_samples_fit_, self.n_clusters_, auto_n_clusters(self.n_samples_fit_)
        advice = "give more calibration data"
        if k > auto:
            advice = f"use n_clusters='auto' ({auto} clusters for {n} queries) or {advice}"
        warnings.warn(
            f"{k} cluster(s) of {n} calibration queries hold a median of {median:g} queries "
            f"each (fewer than {MIN_MEDIAN_CLUSTER_SIZE}): per-cluster accuracy and cost are "
            f"then mostly noise; {advice}",
            UserWarning,
            stacklevel=3,
        )

    def _base_fit_sizes(self) -> np.ndarray:
        """Cluster sizes of the ensemble's fit closest to ``n_clusters_`` clusters."""
        counts = self.cluster_counts_
        base = int(np.argmin(np.abs(counts - self.n_clusters_)))
        start = int(counts[:base].sum())
        return self.cluster_sizes_[start : start + counts[base]]

    def _fit_embeddings(self, data: CalibrationData, embeddings: np.ndarray | None) -> np.ndarray:
        if embeddings is None:
            return embed_texts(self.get_embedder(), data.queries, show_progress=self.show_progress)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(data):
            msg = (
                f"embeddings: expected shape ({len(data)}, n_features) to match the "
                f"{len(data)} calibration queries, got {embeddings.shape}"
            )
            raise ValueError(msg)
        return normalize_rows(embeddings)

    def _cluster_means(
        self, values: np.ndarray, labels: np.ndarray, what: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pool-wide means, counts and (shrunk) cluster means of one statistic.

        ``labels`` has one row per k-means fit of the ensemble, indexing the stacked cluster
        rows. Means run over the queries with the statistic for some model, unmeasured cells
        filled with the model's expected value (:func:`_fill_unmeasured`, within each fit's
        partition, averaged over the fits).
        """
        labels = np.atleast_2d(labels)
        fits = []
        for row in labels:
            one = np.zeros((labels.shape[1], len(self.cluster_centers_)))
            one[np.arange(labels.shape[1]), row] = 1.0
            fits.append(one)
        onehot = np.sum(fits, axis=0)
        measured = ~np.isnan(values)
        covered = measured.any(axis=1)
        expected = np.mean([_fill_unmeasured(values, one, what) for one in fits], axis=0)
        filled = np.where(covered[:, None], expected, 0.0)
        sums = onehot.T @ filled
        counts = onehot.T @ measured.astype(float)
        rows = (onehot.T @ covered.astype(float))[:, None]
        pool_mean = filled.sum(axis=0) / covered.sum()
        prior = self.shrinkage * pool_mean
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (sums + prior) / (rows + self.shrinkage)
        means = np.where(rows + self.shrinkage > 0, means, pool_mean)
        return pool_mean, counts.astype(np.int64), means

    # ------------------------------------------------------------------ routing

    def get_embedder(self) -> Embeddings:
        """The embedder queries go through (the default one when ``embedder`` is None)."""
        return WordLlamaEmbeddings() if self.embedder is None else self.embedder

    def route(
        self,
        query: str | np.ndarray | Sequence[float],
        alpha: float = 0.5,
        *,
        allowed_models: Sequence[str] | None = None,
        top_p: int | None = None,
    ) -> RoutingDecision:
        """Choose the model for one query.

        Args:
            query: Query text, or its embedding from this router's embedder.
            alpha: Weight of accuracy against cost, in [0, 1] (1: accuracy only).
            allowed_models: Restrict the candidates (normalisation is done among them).
            top_p: Number of nearest clusters to use, in [1, ``n_clusters_``]; default the
                router's ``top_p_``.

        Returns:
            The decision, with every candidate's score and the clusters used.

        Raises:
            ValueError: alpha outside [0, 1], an unknown or empty ``allowed_models``, or an
                embedding of the wrong size.
        """
        vector = self._as_vectors([query])
        top = self._resolve_top_p(top_p)
        nearest = self._nearest_clusters(vector, top)
        batch = self._score_vectors(vector, self._candidate_columns(allowed_models), top, nearest)
        alpha = _check_alpha(alpha)
        scores = batch.scores(alpha)[0]
        order = _rank(scores, batch.expected_cost[0], first=int(batch.choose(alpha)[0]))
        clusters, sims, weights = nearest
        return RoutingDecision(
            model=batch.models[order[0]],
            alpha=alpha,
            top_p=top,
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
                if c < len(self.cluster_centers_)
            ),
        )

    async def aroute(
        self,
        query: str | np.ndarray | Sequence[float],
        alpha: float = 0.5,
        *,
        allowed_models: Sequence[str] | None = None,
        top_p: int | None = None,
    ) -> RoutingDecision:
        """:meth:`route` without blocking the event loop.

        An embedder with its own ``aembed_documents`` (a remote API client) is awaited, so
        concurrent calls embed concurrently; any other embedder runs :meth:`route` in the
        default executor. Queries are embedded as documents, as when fitting.
        """
        embedder = self.get_embedder()
        if isinstance(query, str) and _overrides(embedder, "aembed_documents"):
            check_fitted(self)
            vectors = await embedder.aembed_documents([bounded_text(query)])
            query = np.asarray(vectors[0], dtype=np.float32)
        elif isinstance(query, str):
            route = functools.partial(
                self.route, query, alpha, allowed_models=allowed_models, top_p=top_p
            )
            return await asyncio.get_running_loop().run_in_executor(None, route)
        return self.route(query, alpha, allowed_models=allowed_models, top_p=top_p)

    def route_batch(
        self,
        queries: Sequence[str] | np.ndarray,
        alpha: float = 0.5,
        *,
        allowed_models: Sequence[str] | None = None,
        top_p: int | None = None,
    ) -> list[str]:
        """Choose the model for many queries at once (vectorised).

        Args:
            queries: Query texts, or a ``(n_queries, n_features)`` embedding array.
            alpha: Weight of accuracy against cost, in [0, 1].
            allowed_models: Restrict the candidates (normalisation is done among them).
            top_p: Number of nearest clusters to use, in [1, ``n_clusters_``]; default the
                router's ``top_p_``.

        Returns:
            The chosen model id per query.
        """
        alpha = _check_alpha(alpha)
        if len(queries) == 0:
            self._candidate_columns(allowed_models)  # still refuse bad arguments
            return []
        batch = self.score_batch(queries, allowed_models=allowed_models, top_p=top_p)
        chosen = batch.choose(alpha)
        return [batch.models[j] for j in chosen]

    def score_batch(
        self,
        queries: Sequence[str] | np.ndarray,
        *,
        allowed_models: Sequence[str] | None = None,
        top_p: int | None = None,
    ) -> BatchScores:
        """Alpha-independent scores of many queries; see :class:`BatchScores`."""
        vectors = self._as_vectors(queries)
        candidates = self._candidate_columns(allowed_models)
        return self._score_vectors(vectors, candidates, self._resolve_top_p(top_p))

    def _score_vectors(
        self,
        vectors: np.ndarray,
        candidates: tuple[int, ...],
        top_p: int,
        nearest: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        *,
        parts: bool = True,
    ) -> BatchScores:
        """Expected accuracy and cost of the candidates, and (``parts``) the score parts."""
        clusters, _, weights = nearest or self._nearest_clusters(vectors, top_p)
        accuracy, cost, acc_norm, cost_norm = self._candidate_tables(candidates)
        w = weights[:, :, None]
        total = weights.sum(axis=1, keepdims=True)
        expected_accuracy = (w * accuracy[clusters]).sum(axis=1) / total
        expected_cost = (w * cost[clusters]).sum(axis=1) / total
        models = [self.models_[j] for j in candidates]
        if not parts:
            empty = np.empty((len(vectors), 0))
            return BatchScores(models, empty, empty, expected_accuracy, expected_cost)
        if self.scoring == "utility":
            return BatchScores(
                models=models,
                accuracy_part=expected_accuracy,
                cost_part=-self._cost_term(expected_cost),
                expected_accuracy=expected_accuracy,
                expected_cost=expected_cost,
                alpha_weights=functools.partial(utility_weights, log_prices=self.log_prices_),
            )
        return BatchScores(
            models=models,
            accuracy_part=(w * acc_norm[clusters]).sum(axis=1),
            cost_part=(w * (1.0 - cost_norm[clusters])).sum(axis=1),
            expected_accuracy=expected_accuracy,
            expected_cost=expected_cost,
        )

    def _cost_term(self, expected_cost: np.ndarray) -> np.ndarray:
        """Cost as the utility score prices it: USD per query, or its log (``cost_scale``)."""
        if self.cost_scale == "log":
            return np.log(np.maximum(expected_cost, _cost_floor(self.cost_)))
        return expected_cost

    def _as_vectors(self, queries: Sequence[Any] | np.ndarray) -> np.ndarray:
        check_fitted(self)
        if len(queries) and all(isinstance(q, str) for q in queries):
            return embed_texts(self.get_embedder(), list(queries), cache=None)
        vectors = np.asarray(queries, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        if vectors.ndim != 2 or vectors.shape[1] != self.n_features_in_:
            msg = (
                f"query embedding: expected {self.n_features_in_} features (embedder "
                f"{self.embedder_id_!r}), got shape {vectors.shape}"
            )
            raise ValueError(msg)
        return normalize_rows(vectors)

    def _resolve_top_p(self, top_p: int | None) -> int:
        top = self.top_p_ if top_p is None else top_p
        if not _is_int(top) or not 1 <= top <= self.n_clusters_:
            msg = (
                f"top_p must be an int in [1, {self.n_clusters_}] (the router's clusters), "
                f"got {top!r}"
            )
            raise ValueError(msg)
        return int(top)

    def _candidate_columns(self, allowed_models: Sequence[str] | None) -> tuple[int, ...]:
        check_fitted(self)
        if allowed_models is None:
            return tuple(range(len(self.models_)))
        if isinstance(allowed_models, str):
            allowed_models = [allowed_models]
        unknown = [m for m in allowed_models if m not in self.models_]
        if unknown:
            msg = f"allowed_models: unknown model id(s) {unknown}; the router knows {self.models_}"
            raise ValueError(msg)
        if not allowed_models:
            msg = "allowed_models is empty: at least one candidate model is needed"
            raise ValueError(msg)
        return tuple(sorted({self.models_.index(m) for m in allowed_models}))

    def _nearest_clusters(
        self, vectors: np.ndarray, top_p: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-p cluster indices, similarities and weights; a zero vector gets the pool row.

        Each k-means fit of the ensemble contributes its own top-p clusters (at most its
        cluster count) with weights summing to ``top_p / n_fits``, so a single fit weighs
        each cluster 1 as in the paper. The pool row (the row after the clusters) holds
        pool-wide statistics, so a query with no embeddable text is routed on what is known
        about the whole calibration set.
        """
        sims = vectors @ self.cluster_centers_.T
        found = []
        start = 0
        for count in self.cluster_counts_:
            top, top_sims = _top_k(sims[:, start : start + count], min(top_p, int(count)))
            found.append((top + start, top_sims, self._cluster_weights(top_sims, top_p)))
            start += int(count)
        top, top_sims, weights = (np.hstack(arrays) for arrays in zip(*found, strict=True))
        top[~np.any(vectors, axis=1)] = len(self.cluster_centers_)
        return top, top_sims, weights

    def _cluster_weights(self, top_sims: np.ndarray, top_p: int) -> np.ndarray:
        """Weights of one fit's nearest clusters, summing to ``top_p / n_fits`` per query."""
        if self.cluster_weights == "softmax":
            weights = np.exp(self.beta * (top_sims - top_sims[:, :1]))
        else:
            weights = np.ones_like(top_sims)
        share = top_p / len(self.cluster_counts_)
        return weights * (share / weights.sum(axis=1, keepdims=True))

    def _candidate_tables(
        self, candidates: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Raw and min-max normalised accuracy and cost tables among the candidates.

        Rows are the clusters plus the pool row; the last :data:`NORM_CACHE_SIZE` candidate
        sets used are cached, so many distinct ``allowed_models`` lists cannot grow memory.
        """
        key = (self.cost_scale, *candidates)
        with _NORM_CACHE_LOCK:
            cache: _NormCache = self.__dict__.setdefault("_norm_cache", OrderedDict())
            tables = cache.get(key)
            if tables is not None:
                cache.move_to_end(key)
                return tables
        columns = list(candidates)
        accuracy = self._with_pool_row(self.accuracy_, self.global_accuracy_)[:, columns]
        cost = self._with_pool_row(self.cost_, self.global_cost_)[:, columns]
        scaled = np.log(np.maximum(cost, _cost_floor(cost))) if self.cost_scale == "log" else cost
        tables = (accuracy, cost, _minmax_rows(accuracy, 1.0), _minmax_rows(scaled, 0.0))
        with _NORM_CACHE_LOCK:
            cache[key] = tables
            while len(cache) > NORM_CACHE_SIZE:
                cache.popitem(last=False)
        return tables

    @staticmethod
    def _with_pool_row(per_cluster: np.ndarray, pool: np.ndarray) -> np.ndarray:
        return np.vstack([per_cluster, pool[None, :]])

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write the fitted router to a directory (JSON + ``.npz``, no pickle), atomically.

        A process killed mid-save leaves the old or the new router, concurrent loads get one of
        the two, and concurrent saves take turns. Files in the directory that are not the
        router's own are kept.

        Returns:
            The directory written.

        Raises:
            RouterFileError: ``path`` is a file, a folder of other things, or holds another
                program's ``router.json``; or another save held it for 60 s.
            ValueError: the router holds values :meth:`load` would refuse.
        """
        from langchain_avengers._persistence import save_router

        check_fitted(self)
        return save_router(self, Path(path))

    @classmethod
    def load(cls, path: str | Path, *, embedder: Embeddings | None = None) -> ClusterRouter:
        """Read a router written by :meth:`save`.

        Args:
            path: The router directory.
            embedder: The embedder it was fitted with; may be omitted for the default
                (WordLlama) embedder.

        Raises:
            RouterFileError: a missing, truncated or corrupted file, an unsupported format
                version, values no saved router holds (model ids that are not safe unique
                strings, non-finite or out-of-range statistics, arrays of another dtype or
                shape, parameters of the wrong type), or an embedder that differs from the
                one used for fitting. The message is one line naming the file and field.
        """
        from langchain_avengers._persistence import load_router

        return load_router(cls, Path(path), embedder)


def as_calibration_data(records: RecordsLike) -> CalibrationData:
    """Accept a JSONL path, validated records or :class:`CalibrationData`."""
    if isinstance(records, CalibrationData):
        return records
    if isinstance(records, (str, Path)):
        return CalibrationData.from_path(records)
    return CalibrationData.from_records(list(records))


def _require_measured(models: Sequence[str], values: np.ndarray, what: str) -> None:
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


def _overrides(embedder: Embeddings, method: str) -> bool:
    """Whether ``embedder`` has its own ``method`` rather than the base class's executor one."""
    return getattr(type(embedder), method, None) is not getattr(Embeddings, method)


def _fill_unmeasured(values: np.ndarray, onehot: np.ndarray, what: str) -> np.ndarray:
    """``values`` with every unmeasured cell of a query some model was measured on filled.

    The fill is the model's expected value on that query, from the other models measured on
    it. For scores: their mean score plus the model's advantage over them
    (:func:`_expected_advantage`), clipped to [0, 1]. For costs: their mean cost times the
    model's ratio of total cost to theirs where it was measured. Rows nobody was measured on
    stay NaN.
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
        expected = np.clip(others + onehot @ _expected_advantage(gaps, paired, onehot), 0.0, 1.0)
    else:
        own_total = np.where(paired, own, 0.0).sum(axis=0)
        their_total = np.where(paired, others, 0.0).sum(axis=0)
        ratio = np.divide(
            own_total, their_total, out=np.ones_like(own_total), where=their_total > 0
        )
        expected = others * ratio
    return np.where(measured, values, expected)


def _expected_advantage(gaps: np.ndarray, paired: np.ndarray, onehot: np.ndarray) -> np.ndarray:
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


def _warn_if_barely_measured(models: Sequence[str], n_scored: np.ndarray) -> None:
    """One warning naming the models scored on fewer than :data:`PRIOR_QUERIES` queries."""
    few = [f"{m} ({n} scored)" for m, n in zip(models, n_scored, strict=True) if n < PRIOR_QUERIES]
    if few:
        warnings.warn(
            f"calibration data: model(s) {', '.join(few)} have a score on fewer than "
            f"{PRIOR_QUERIES} calibration queries: their statistics are mostly estimated "
            "from the other models measured on the same queries; measure them on more queries",
            UserWarning,
            stacklevel=3,
        )


def _is_int(value: object) -> bool:
    """Python or numpy integers (grid searches hand out numpy ones), never bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_alpha(alpha: float) -> float:
    if not 0.0 <= float(alpha) <= 1.0:
        msg = f"alpha must be in [0, 1], got {alpha!r}"
        raise ValueError(msg)
    return float(alpha)


def _is_scale_list(value: object) -> bool:
    """A non-empty sequence (not a string) of finite positive numbers."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        return False
    return all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < float(v) < np.inf
        for v in value
    )


def _top_k(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``k`` largest entries, largest first."""
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_sims, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)


def _minmax_rows(table: np.ndarray, constant: float) -> np.ndarray:
    """Min-max normalise each row; a row whose values are all equal becomes ``constant``."""
    low = table.min(axis=1, keepdims=True)
    span = table.max(axis=1, keepdims=True) - low
    out = np.full_like(table, constant, dtype=float)
    np.divide(table - low, span, out=out, where=span > 0)
    return out


def _cost_floor(cost: np.ndarray) -> float:
    """Smallest cost worth telling apart on a log scale: a tenth of the cheapest paid cost."""
    positive = cost[cost > 0]
    return float(positive.min()) / 10 if positive.size else 1e-12


def _rank(scores: np.ndarray, costs: np.ndarray, *, first: int) -> np.ndarray:
    """Candidate order for display: the chosen one, then by score (cheaper first on ties)."""
    order = np.lexsort((costs, -scores))
    return np.concatenate([[first], order[order != first]])
