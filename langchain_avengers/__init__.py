"""Avengers-Pro routing for LangChain: one chat model that sends each call to the right model."""

from typing import TYPE_CHECKING, Any

from langchain_avengers._version import __version__
from langchain_avengers.policies.pacing import SpendPacer
from langchain_avengers.records.data import CalibrationData
from langchain_avengers.records.format import CalibrationRecord, RecordsError, Usage, load_records
from langchain_avengers.routing.bundled import load_default_router
from langchain_avengers.routing.embeddings import EmbeddingCache, WordLlamaEmbeddings, embed_texts
from langchain_avengers.routing.persistence import RouterFileError
from langchain_avengers.routing.router import (
    CandidateScore,
    ClusterMatch,
    ClusterRouter,
    RoutingDecision,
)

if TYPE_CHECKING:
    from langchain_avengers.chat_models.base import AvengersChatModel


def __getattr__(name: str) -> Any:
    """Import the chat model on first use: the offline tools and CLI skip langchain-openai."""
    if name == "AvengersChatModel":
        from langchain_avengers.chat_models.base import AvengersChatModel

        return AvengersChatModel
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


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
    "SpendPacer",
    "Usage",
    "WordLlamaEmbeddings",
    "__version__",
    "embed_texts",
    "load_default_router",
    "load_records",
]
