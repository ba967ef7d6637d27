"""Unit-test fixtures: offline, fast, no ../shared.

* every test runs with sockets disabled (pytest-socket; unix sockets stay allowed) and without
  ``OPENROUTER_API_KEY``, so nothing here can reach a network;
* every test gets a fresh process-wide embedding cache, so tests never see each other's vectors
  (``tests/conftest.py`` also gives each an empty ``$AVENGERS_CACHE_DIR``, so "auto" means the
  bundled catalog snapshot);
* :class:`KeywordEmbeddings` is a tiny LangChain ``Embeddings`` with a geometry known by hand:
  arithmetic, capital-city and Python queries (the three datasets of ``small.jsonl``) land near
  three orthogonal axes;
* :class:`CountingEmbeddings` records every text it is asked to embed.

Test modules get these through fixtures (never ``import conftest``: pytest may hold another
directory's conftest under that name).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from pytest_socket import disable_socket, enable_socket

from langchain_avengers.routing import embeddings as embeddings_module
from langchain_avengers.routing.embeddings import EmbeddingCache

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures"
SMALL_JSONL = FIXTURES_DIR / "small.jsonl"
ACME_CATALOG = FIXTURES_DIR / "acme_catalog.json"


def topic_of(text: str) -> int:
    """Axis of a query of ``small.jsonl``: 0 arithmetic, 1 capital cities, 2 Python code."""
    if "capital" in text.lower():
        return 1
    if "python" in text.lower():
        return 2
    return 0


class KeywordEmbeddings(Embeddings):
    """4-d embeddings: a topic axis plus a small deterministic per-text jitter.

    The three topics are orthogonal, and the jitter (norm 0.1, mostly on the 4th axis) keeps
    texts of one topic distinct but far closer to each other than to any other topic.
    """

    identity = "tests/keyword-embeddings-4"

    def vector(self, text: str) -> list[float]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        jitter = np.random.default_rng(seed).normal(size=4)
        jitter[3] = abs(jitter[3]) + 1.0
        vec = np.zeros(4)
        vec[topic_of(text)] = 1.0
        vec += 0.1 * jitter / np.linalg.norm(jitter)
        return (vec / np.linalg.norm(vec)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vector(text)


class CountingEmbeddings(KeywordEmbeddings):
    """:class:`KeywordEmbeddings` that records every text it embeds."""

    def __init__(self, identity: str = "tests/counting-embeddings") -> None:
        self.identity = identity
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.embedded.append(text)
        return super().embed_query(text)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture(autouse=True)
def _fresh_process_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings_module, "_PROCESS_CACHE", EmbeddingCache())


@pytest.fixture
def small_jsonl() -> Path:
    """The committed 90-row calibration fixture (regenerate with make_small.py)."""
    return SMALL_JSONL


@pytest.fixture
def acme_catalog() -> Path:
    """A catalog file with list prices of the three models of ``small.jsonl``."""
    return ACME_CATALOG


@pytest.fixture
def keyword_embeddings() -> KeywordEmbeddings:
    return KeywordEmbeddings()


@pytest.fixture
def counting_embeddings() -> CountingEmbeddings:
    return CountingEmbeddings()


@pytest.fixture
def counting_embeddings_class() -> type[CountingEmbeddings]:
    """The class itself, to make several counters (e.g. two identities)."""
    return CountingEmbeddings
