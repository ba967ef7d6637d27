"""The Avengers-Pro cluster router (Zhang et al., arXiv 2508.12631).

Fitting: embed the calibration queries, k-means them, and keep every model's mean score and
mean cost per query in every cluster. Routing: embed the query, take its ``nearest_clusters``
nearest
clusters, min-max normalise accuracy and cost among the candidate models in each cluster, score
``alpha * acc~ + (1 - alpha) * (1 - cost~)``, sum over the clusters and pick the best model.

That is the paper's recipe (``scoring="minmax", cluster_scales=(1.0,), shrinkage=0.0``). The
default instead averages several k-means fits, shrinks small clusters' means toward the pool
mean, and scores ``expected accuracy - price(alpha) * expected cost``
(:mod:`langchain_avengers.routing.scoring`), chosen on inner validation splits
(``benchmarks/select_quality.py``).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_avengers.records.data import CalibrationData
from langchain_avengers.records.format import CalibrationRecord
from langchain_avengers.records.format import RecordsError as RecordsError
from langchain_avengers.routing.decision import BatchScores as BatchScores
from langchain_avengers.routing.decision import CandidateScore, ClusterMatch, RoutingDecision
from langchain_avengers.routing.decision import minmax_weights as minmax_weights
from langchain_avengers.routing.embeddings import (
    WordLlamaEmbeddings,
    bounded_text,
    embed_texts,
    embedder_identity,
    normalize_rows,
)
from langchain_avengers.routing.estimator import Estimator, check_fitted
from langchain_avengers.routing.kmeans import ensemble_counts, fit_kmeans_ensemble
from langchain_avengers.routing.params import AUTO_MAX_CLUSTERS as AUTO_MAX_CLUSTERS
from langchain_avengers.routing.params import AUTO_MIN_CLUSTERS as AUTO_MIN_CLUSTERS
from langchain_avengers.routing.params import (
    auto_n_clusters,
    candidate_columns,
    check_alpha,
    check_nearest_clusters,
    fit_sizes,
)
from langchain_avengers.routing.scoring import (
    cost_floor,
    find_nearest_clusters,
    hull_breakpoints,
    minmax_rows,
    price_schedule,
    rank,
    utility_weights,
)
from langchain_avengers.routing.statistics import MIN_MEDIAN_CLUSTER_SIZE as MIN_MEDIAN_CLUSTER_SIZE
from langchain_avengers.routing.statistics import PRIOR_QUERIES as PRIOR_QUERIES
from langchain_avengers.routing.statistics import (
    cluster_means,
    require_measured,
    warn_if_barely_measured,
    warn_if_clusters_are_small,
    warn_if_one_model,
)

__all__ = [
    "CandidateScore",
    "ClusterMatch",
    "ClusterRouter",
    "RoutingDecision",
    "auto_n_clusters",
]

RecordsLike = CalibrationData | Sequence[CalibrationRecord] | str | Path
NORM_CACHE_SIZE = 256
"""Candidate sets (``allowed_models``) whose normalised tables a router keeps, least recently
used dropped first: four ``(n_clusters_ + 1, n_candidates)`` float tables each, so about 10 MB
at most for 60 clusters and 20 models, however many distinct sets are routed."""
_NormCache = OrderedDict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
_NORM_CACHE_LOCK = threading.Lock()


class ClusterRouter(Estimator):
    """Routes each query to one model of a pool, trading accuracy for cost with ``alpha``.

    A query a model was not measured on counts, in that model's statistics, with the model's
    expected score and cost there, so every model's means cover the same queries (as min-max
    normalisation across models assumes). The expected score is the mean score of the other
    models measured on that query plus the model's advantage over them in that cluster, with
    10 pseudo-queries at its pool-wide advantage, which itself has 10 pseudo-queries at the
    weakest model's advantage in the cluster: a barely measured model counts as the weakest
    until its scores say otherwise. The expected cost is the others' mean cost times the
    model's cost ratio to them, shrunk toward 1 on a log scale. Fully measured models keep
    raw means (the paper); one score, or one answer billed $0, cannot take over routing.
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
    nearest_clusters : int, default=4
        Nearest clusters whose scores are summed when routing (the paper's p); clamped at
        fit to the number of clusters (``nearest_clusters_``), and per k-means fit of the ensemble
        to
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
        expected accuracy and cost are the mean over the fits of its nearest-clusters clusters'
        statistics. Averaging partitions of several sizes smooths the noise of small
        clusters (it helped most on 150-600 calibration queries); ``(1.0,)`` is the paper's
        single fit. Chosen on inner validation splits: ``benchmarks/select_quality.py``.
    cost_scale : {"linear", "log"}, default="linear"
        Score the mean cost itself (default; the total bill is what adds up over queries)
        or its logarithm. With ``scoring="minmax"``, ``"log"`` keeps cheap models apart
        when one model costs orders of magnitude more (``benchmarks/select_defaults.py``).
    cluster_weights : {"uniform", "softmax"}, default="uniform"
        Sum the nearest-clusters clusters equally (the paper) or weight them by
        ``softmax(beta * cosine similarity)`` (the reference code), rescaled to sum to
        nearest_clusters.
    beta : float, default=9.0
        Softmax sharpness for ``cluster_weights="softmax"``.
    shrinkage : float, default=10.0
        Pseudo-count pulling small clusters' statistics toward the model's pool-wide mean
        (a cluster of n queries weighs n / (n + shrinkage) of its own mean); 0 uses raw cluster
        means (the paper). The ensemble's finest fit has clusters of a dozen queries or fewer,
        where raw means are mostly noise. Chosen on inner validation splits
        (``benchmarks/select_quality.py``), where it ranked first and reached the best single
        model's accuracy within its cost in the most splits on 150 and 600 calibration queries.
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
    nearest_clusters_ : int
        Nearest clusters used when routing: ``min(nearest_clusters, n_clusters_)``.
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
        nearest_clusters: int = 4,
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
        self.nearest_clusters = nearest_clusters
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
                :meth:`~langchain_avengers.records.format.CalibrationData.from_path`, so answers
                with tokens but no cost are priced from the ``"auto"`` catalog; load the
                file yourself to choose another), validated records or
                :class:`~langchain_avengers.records.format.CalibrationData`.
            embeddings: Optional precomputed ``(n_queries, n_features)`` embeddings of the
                queries, made with this router's embedder.

        Returns:
            The fitted router.
        """
        data = as_calibration_data(records)
        n_clusters, nearest_clusters = self._validate_params(len(data))
        # checked before any fitted attribute changes, so a failed refit leaves the router as
        # it was (and before paying for embeddings)
        require_measured(data.models, data.scores, "score")
        require_measured(data.models, data.costs, "cost")
        self._norm_cache: _NormCache = OrderedDict()
        vectors = self._fit_embeddings(data, embeddings)
        counts = ensemble_counts(n_clusters, self.cluster_scales, len(data))
        centers, labels = fit_kmeans_ensemble(vectors, counts, self.n_init, self.random_state)
        self.n_clusters_ = n_clusters
        self.nearest_clusters_ = nearest_clusters
        self.models_ = list(data.models)
        self.cluster_counts_ = np.asarray(counts, dtype=np.int64)
        self.cluster_centers_ = normalize_rows(centers)
        self.cluster_sizes_ = np.bincount(labels.ravel(), minlength=len(centers))
        self.global_accuracy_, self.n_scored_, self.accuracy_ = cluster_means(
            data.scores, labels, len(centers), self.shrinkage, "score"
        )
        self.global_cost_, self.n_costed_, self.cost_ = cluster_means(
            data.costs, labels, len(centers), self.shrinkage, "cost"
        )
        self.n_features_in_ = vectors.shape[1]
        self.embedder_id_ = embedder_identity(self.get_embedder())
        self.data_fingerprint_ = data.fingerprint()
        self.n_samples_fit_ = len(data)
        self.log_prices_ = self._fit_price_schedule(vectors)
        warn_if_clusters_are_small(self.cluster_sizes_, self.cluster_counts_, n_clusters, len(data))
        # every query is in one cluster of each k-means fit: count it once
        warn_if_barely_measured(self.models_, self.n_scored_.sum(axis=0) // len(counts), len(data))
        warn_if_one_model(self.models_)
        return self

    def _fit_price_schedule(self, vectors: np.ndarray) -> np.ndarray:
        """Alpha -> log price table from where the calibration queries' best choice changes."""
        all_models = tuple(range(len(self.models_)))
        batch = self._score_vectors(vectors, all_models, self.nearest_clusters_, parts=False)
        cost = self._cost_term(batch.expected_cost)
        return price_schedule(hull_breakpoints(batch.expected_accuracy, cost))

    def _validate_params(self, n_samples: int) -> tuple[int, int]:
        """Check the parameters for ``n_samples`` queries; the cluster count and neighbours."""
        return fit_sizes(self, n_samples)

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
        nearest_clusters: int | None = None,
    ) -> RoutingDecision:
        """Choose the model for one query.

        Args:
            query: Query text, or its embedding from this router's embedder.
            alpha: Weight of accuracy against cost, in [0, 1] (1: accuracy only).
            allowed_models: Restrict the candidates (normalisation is done among them).
            nearest_clusters: Number of nearest clusters to use, in [1, ``n_clusters_``]; default
            the
                router's ``nearest_clusters_``.

        Returns:
            The decision, with every candidate's score and the clusters used.

        Raises:
            ValueError: alpha outside [0, 1], an unknown or empty ``allowed_models``, or an
                embedding of the wrong size.
        """
        vector = self._as_vectors([query])
        top = self._resolve_nearest_clusters(nearest_clusters)
        nearest = self._nearest_clusters(vector, top)
        batch = self._score_vectors(vector, self._candidate_columns(allowed_models), top, nearest)
        alpha = check_alpha(alpha)
        scores = batch.scores(alpha)[0]
        order = rank(scores, batch.expected_cost[0], first=int(batch.choose(alpha)[0]))
        clusters, sims, weights = nearest
        return RoutingDecision(
            model=batch.models[order[0]],
            alpha=alpha,
            nearest_clusters=top,
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
        nearest_clusters: int | None = None,
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
                self.route,
                query,
                alpha,
                allowed_models=allowed_models,
                nearest_clusters=nearest_clusters,
            )
            return await asyncio.get_running_loop().run_in_executor(None, route)
        return self.route(
            query, alpha, allowed_models=allowed_models, nearest_clusters=nearest_clusters
        )

    def route_batch(
        self,
        queries: Sequence[str] | np.ndarray,
        alpha: float = 0.5,
        *,
        allowed_models: Sequence[str] | None = None,
        nearest_clusters: int | None = None,
    ) -> list[str]:
        """Choose the model for many queries at once (vectorised).

        Args:
            queries: Query texts, or a ``(n_queries, n_features)`` embedding array.
            alpha: Weight of accuracy against cost, in [0, 1].
            allowed_models: Restrict the candidates (normalisation is done among them).
            nearest_clusters: Number of nearest clusters to use, in [1, ``n_clusters_``]; default
            the
                router's ``nearest_clusters_``.

        Returns:
            The chosen model id per query.
        """
        alpha = check_alpha(alpha)
        if len(queries) == 0:
            self._candidate_columns(allowed_models)  # still refuse bad arguments
            return []
        batch = self.score_batch(
            queries, allowed_models=allowed_models, nearest_clusters=nearest_clusters
        )
        chosen = batch.choose(alpha)
        return [batch.models[j] for j in chosen]

    def score_batch(
        self,
        queries: Sequence[str] | np.ndarray,
        *,
        allowed_models: Sequence[str] | None = None,
        nearest_clusters: int | None = None,
    ) -> BatchScores:
        """Alpha-independent scores of many queries; see :class:`BatchScores`."""
        vectors = self._as_vectors(queries)
        candidates = self._candidate_columns(allowed_models)
        return self._score_vectors(
            vectors, candidates, self._resolve_nearest_clusters(nearest_clusters)
        )

    def _score_vectors(
        self,
        vectors: np.ndarray,
        candidates: tuple[int, ...],
        nearest_clusters: int,
        nearest: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        *,
        parts: bool = True,
    ) -> BatchScores:
        """Expected accuracy and cost of the candidates, and (``parts``) the score parts."""
        clusters, _, weights = nearest or self._nearest_clusters(vectors, nearest_clusters)
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
            return np.log(np.maximum(expected_cost, cost_floor(self.cost_)))
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

    def _resolve_nearest_clusters(self, nearest_clusters: int | None) -> int:
        return check_nearest_clusters(
            self.nearest_clusters_ if nearest_clusters is None else nearest_clusters,
            self.n_clusters_,
        )

    def _candidate_columns(self, allowed_models: Sequence[str] | None) -> tuple[int, ...]:
        check_fitted(self)
        return candidate_columns(self.models_, allowed_models)

    def _nearest_clusters(
        self, vectors: np.ndarray, nearest_clusters: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices, similarities and weights of each query's nearest clusters."""
        return find_nearest_clusters(
            vectors,
            self.cluster_centers_,
            self.cluster_counts_,
            nearest_clusters,
            weighting=self.cluster_weights,
            beta=self.beta,
        )

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
        scaled = np.log(np.maximum(cost, cost_floor(cost))) if self.cost_scale == "log" else cost
        tables = (accuracy, cost, minmax_rows(accuracy, 1.0), minmax_rows(scaled, 0.0))
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
        from langchain_avengers.routing.persistence import save_router

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
        from langchain_avengers.routing.persistence import load_router

        return load_router(cls, Path(path), embedder)


def as_calibration_data(records: RecordsLike) -> CalibrationData:
    """Accept a JSONL path, validated records or :class:`CalibrationData`."""
    if isinstance(records, CalibrationData):
        return records
    if isinstance(records, (str, Path)):
        return CalibrationData.from_path(records)
    return CalibrationData.from_records(list(records))


def _overrides(embedder: Embeddings, method: str) -> bool:
    """Whether ``embedder`` has its own ``method`` rather than the base class's executor one."""
    return getattr(type(embedder), method, None) is not getattr(Embeddings, method)
