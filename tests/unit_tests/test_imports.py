"""The public API: pin ``langchain_avengers.__all__`` (as LangChain partner packages do)."""

from __future__ import annotations

import langchain_avengers

EXPECTED_ALL = [
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


def test_all_imports() -> None:
    assert sorted(langchain_avengers.__all__) == sorted(EXPECTED_ALL)


def test_every_public_name_is_importable() -> None:
    for name in EXPECTED_ALL:
        assert getattr(langchain_avengers, name) is not None


def test_errors_are_value_errors() -> None:
    assert issubclass(langchain_avengers.RecordsError, ValueError)
    assert issubclass(langchain_avengers.RouterFileError, ValueError)


def test_version_is_a_string() -> None:
    assert isinstance(langchain_avengers.__version__, str)
    assert langchain_avengers.__version__
