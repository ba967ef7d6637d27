"""Avengers-Pro routing for LangChain: one chat model that sends each call to the right model."""

from langchain_avengers._persistence import RouterFileError
from langchain_avengers._version import __version__
from langchain_avengers.chat_models import AvengersChatModel
from langchain_avengers.embeddings import EmbeddingCache, WordLlamaEmbeddings, embed_texts
from langchain_avengers.pool import load_default_router
from langchain_avengers.records import (
    CalibrationData,
    CalibrationRecord,
    RecordsError,
    Usage,
    load_records,
)
from langchain_avengers.router import (
    CandidateScore,
    ClusterMatch,
    ClusterRouter,
    RoutingDecision,
)

__all__ = [
    "AvengersChatModel",
    "CalibrationData",
    "CalibrationRecord",
    "CandidateScore",
    "ClusterMatch",
    "ClusterRouter",
    "EmbeddingCache",
    "RecordsError",
    "RouterFileError",
    "RoutingDecision",
    "Usage",
    "WordLlamaEmbeddings",
    "__version__",
    "embed_texts",
    "load_default_router",
    "load_records",
]
