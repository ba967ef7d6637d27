"""The routing engine: embed a query, find its nearest clusters, score the pool, pick a model.

:class:`ClusterRouter` is fitted on calibration records (the ``train`` extra) and saved as a
folder; routing a call with a saved router needs only numpy and the embedder.
"""

from langchain_avengers.routing.bundled import default_router_path, load_default_router, load_router
from langchain_avengers.routing.decision import (
    BatchScores,
    CandidateScore,
    ClusterMatch,
    RoutingDecision,
)
from langchain_avengers.routing.embeddings import EmbeddingCache, WordLlamaEmbeddings, embed_texts
from langchain_avengers.routing.persistence import RouterFileError
from langchain_avengers.routing.router import ClusterRouter, auto_n_clusters

__all__ = [
    "BatchScores",
    "CandidateScore",
    "ClusterMatch",
    "ClusterRouter",
    "EmbeddingCache",
    "RouterFileError",
    "RoutingDecision",
    "WordLlamaEmbeddings",
    "auto_n_clusters",
    "default_router_path",
    "embed_texts",
    "load_default_router",
    "load_router",
]
