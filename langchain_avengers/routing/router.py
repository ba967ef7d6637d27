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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_avengers._utils.extras import check_installed
from langchain_avengers.records.data import RecordsLike, as_calibration_data
from langchain_avengers.records.format import RecordsError as RecordsError
from langchain_avengers.routing import persistence
from langchain_avengers.routing.decision import BatchScores as BatchScores
from langchain_avengers.routing.decision import (
    CandidateScore,
    ClusterMatch,
    RoutingDecision,
    decide,
)
from langchain_avengers.routing.decision import minmax_weights as minmax_weights
from langchain_avengers.routing.embeddings import (
    WordLlamaEmbeddings,
    bounded_text,
    embed_texts,
    embedder_identity,
    given_embeddings,
    has_own_method,
    normalize_rows,
    query_vectors,
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
from langchain_avengers.routing.scoring import NORM_CACHE_SIZE as NORM_CACHE_SIZE
from langchain_avengers.routing.scoring import (
    CandidateTables,
    cost_floor,
    find_nearest_clusters,
    hull_breakpoints,
    price_schedule,
    utility_weights,
)
from langchain_avengers.routing.statistics import MIN_MEDIAN_CLUSTER_SIZE as MIN_MEDIAN_CLUSTER_SIZE
from langchain_avengers.routing.statistics import PRIOR_QUERIES as PRIOR_QUERIES
from langchain_avengers.routing.statistics import (
    cluster_means,
    importance_weights,
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


class ClusterRouter(Estimator):
    """Routes each query to one model of a pool, trading accuracy for cost with ``alpha``.

    A query a model was not measured on counts, in that model's statistics, with the model's
    expected score and cost there (the other models' mean on that query plus the model's
    advantage in that cluster, shrunk toward its pool-wide advantage; its cost ratio to them
    shrunk toward 1 on a log scale), so a model measured on one query, or billed $0 once,
    cannot take over routing. Fitting warns about models scored on fewer than 10 queries. Why
    each default was chosen, and how it differs from the paper:
    ``docs/explanation/router-defaults.md``.

    Parameters
    ----------
    n_clusters : int or "auto", default="auto"
        Number of k-means clusters of the calibration queries (the paper's k). ``"auto"``
        follows the data size: ``round(sqrt(n))`` clipped to [2, 60] (:func:`auto_n_clusters`).
        Fitting warns when the clusters hold a median of fewer than 5 queries.
    nearest_clusters : int, default=4
        Nearest clusters whose statistics are combined when routing (the paper's p); clamped
        at fit to the number of clusters (``nearest_clusters_``), and per k-means fit of the
        ensemble to its cluster count.
    embedder : Embeddings, default=None
        Any LangChain embeddings; ``None`` uses :class:`WordLlamaEmbeddings` (offline).
    scoring : {"utility", "minmax"}, default="utility"
        ``"utility"``: expected accuracy minus a price times expected USD cost, the price set
        by alpha from the prices at which the router's choices on its calibration queries
        change (``log_prices_``), so accuracy and cost gaps keep their real size.
        ``"minmax"``: the paper's ``alpha * acc~ + (1 - alpha) * (1 - cost~)``, both min-max
        normalised per cluster among the candidates.
    cluster_scales : sequence of float, default=(0.5, 1.0, 2.0)
        One k-means fit per scale, with ``round(scale * n_clusters_)`` clusters; a query's
        expected accuracy and cost are the mean over the fits. ``(1.0,)`` is the paper's
        single fit.
    cost_scale : {"linear", "log"}, default="linear"
        Score the mean cost itself (the total bill is what adds up) or its logarithm.
    cluster_weights : {"uniform", "softmax"}, default="uniform"
        Weigh the nearest clusters equally (the paper) or by ``softmax(beta * cosine
        similarity)`` (the reference code), rescaled to sum to ``nearest_clusters``.
    beta : float, default=9.0
        Softmax sharpness for ``cluster_weights="softmax"``.
    shrinkage : float, default=10.0
        Pseudo-count pulling small clusters' statistics toward the model's pool-wide mean (a
        cluster of n queries weighs n / (n + shrinkage) of its own mean); 0 uses raw cluster
        means (the paper).
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

    def fit(
        self, records: RecordsLike, *, embeddings: np.ndarray | None = None, max_weight: float = 1e2
    ) -> ClusterRouter:
        """Cluster the calibration queries and learn every model's accuracy and cost per cluster.

        Args:
            records: Calibration data: a JSONL path (read with
                :meth:`~langchain_avengers.records.format.CalibrationData.from_path`, so answers
                with tokens but no cost are priced from the ``"auto"`` catalog; load the
                file yourself to choose another), validated records or
                :class:`~langchain_avengers.records.format.CalibrationData`.
            embeddings: Optional precomputed ``(n_queries, n_features)`` embeddings of the
                queries, made with this router's embedder.
            max_weight: Clip of a logged record's inverse-propensity weight (default 100).

        Returns:
            The fitted router.
        """
        check_installed("sklearn", "train", "fitting a router")  # before any slow work
        data = as_calibration_data(records)
        weights = importance_weights(data.propensities, max_weight)
        n_clusters, nearest_clusters = self._validate_params(len(data))
        # checked before any fitted attribute changes, so a failed refit leaves the router as
        # it was (and before paying for embeddings)
        require_measured(data.models, data.scores, "score")
        require_measured(data.models, data.costs, "cost")
        self._norm_cache = CandidateTables()
        vectors = (
            embed_texts(self.get_embedder(), data.queries, show_progress=self.show_progress)
            if embeddings is None
            else given_embeddings(embeddings, len(data))
        )
        counts = ensemble_counts(n_clusters, self.cluster_scales, len(data))
        centers, labels = fit_kmeans_ensemble(vectors, counts, self.n_init, self.random_state)
        self.n_clusters_ = n_clusters
        self.nearest_clusters_ = nearest_clusters
        self.models_ = list(data.models)
        self.cluster_counts_ = np.asarray(counts, dtype=np.int64)
        self.cluster_centers_ = normalize_rows(centers)
        self.cluster_sizes_ = np.bincount(labels.ravel(), minlength=len(centers))
        self.global_accuracy_, self.n_scored_, self.accuracy_ = cluster_means(
            data.scores, labels, len(centers), self.shrinkage, "score", weights
        )
        self.global_cost_, self.n_costed_, self.cost_ = cluster_means(
            data.costs, labels, len(centers), self.shrinkage, "cost", weights
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
        return fit_sizes(self.get_params(deep=False), n_samples)

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
            nearest_clusters: Number of nearest clusters to use, in [1, ``n_clusters_``];
                default the router's ``nearest_clusters_``.

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
        return decide(batch, check_alpha(alpha), top, nearest, len(self.cluster_centers_))

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
        if isinstance(query, str) and has_own_method(embedder, "aembed_documents"):
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
            nearest_clusters: Number of nearest clusters to use, in [1, ``n_clusters_``];
                default the router's ``nearest_clusters_``.

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
        tables = self.__dict__.get("_norm_cache")
        if tables is None:  # a router unpickled or built without fit
            tables = self.__dict__.setdefault("_norm_cache", CandidateTables())
        accuracy, cost, acc_norm, cost_norm = tables.get(self, candidates)
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
        return query_vectors(self.get_embedder(), queries, self.n_features_in_, self.embedder_id_)

    def _resolve_nearest_clusters(self, nearest_clusters: int | None) -> int:
        checked = check_nearest_clusters(nearest_clusters, self.n_clusters_)
        return self.nearest_clusters_ if checked is None else checked

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

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write the fitted router to a folder (JSON + safetensors, no pickle), atomically.

        A process killed mid-save leaves the old or the new router, concurrent loads get one of
        the two, and concurrent saves take turns. Files in the folder that are not the router's
        own are kept.

        Returns:
            The folder written.

        Raises:
            RouterFileError: ``path`` is a file, a folder of other things, or holds another
                program's ``router.json``; or another save held it for 60 s.
            ValueError: the router holds values :meth:`load` would refuse.
        """
        check_fitted(self)
        return persistence.save_router(Path(path), persistence.RouterState.of(self))

    @classmethod
    def load(cls, path: str | Path, *, embedder: Embeddings | None = None) -> ClusterRouter:
        """Read a router written by :meth:`save`.

        Args:
            path: The router folder.
            embedder: The embedder it was fitted with; may be omitted for the default
                (WordLlama) embedder.

        Raises:
            RouterFileError: a path that is a file, a missing, truncated, corrupted or forged
                file, another format version, or an embedder other than the one used for
                fitting; one line naming the file and field.
        """
        return persistence.load_router(Path(path), embedder).build(cls)
