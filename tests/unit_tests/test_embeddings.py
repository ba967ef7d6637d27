"""Embeddings: the offline default embedder, embedder identity and the embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_avengers import ClusterRouter, EmbeddingCache, WordLlamaEmbeddings, embed_texts
from langchain_avengers.embeddings import embedder_identity, normalize_rows
from langchain_avengers.evaluation import evaluate_router
from langchain_avengers.records import CalibrationData

# ---------------------------------------------------------------- WordLlama (default)


def test_wordllama_is_a_langchain_embeddings_and_works_offline() -> None:
    # sockets are disabled for every unit test (conftest): this must not need a network
    embedder = WordLlamaEmbeddings()
    assert isinstance(embedder, Embeddings)
    vector = embedder.embed_query("What is the capital of France?")
    assert len(vector) == 256
    assert all(isinstance(x, float) for x in vector)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_wordllama_documents_match_queries_and_are_deterministic() -> None:
    embedder = WordLlamaEmbeddings()
    texts = ["What is 2 + 2?", "Write a Python function that reverses a string."]
    docs = np.array(embedder.embed_documents(texts))
    assert docs.shape == (2, 256)
    np.testing.assert_allclose(docs[0], embedder.embed_query(texts[0]), atol=1e-6)
    np.testing.assert_allclose(docs, np.array(WordLlamaEmbeddings().embed_documents(texts)))
    assert embedder.embed_documents([]) == []


def test_wordllama_similar_questions_are_closer_than_unrelated_ones() -> None:
    v = np.array(
        WordLlamaEmbeddings().embed_documents(
            [
                "What is the capital of France?",
                "Which city is the capital of France?",
                "Write a Python function to sort a list.",
            ]
        )
    )
    assert v[0] @ v[1] > 0.7
    assert v[0] @ v[2] < 0.3


@pytest.mark.parametrize("dim", [64, 128, 256])
def test_wordllama_dimensions_and_identity(dim: int) -> None:
    embedder = WordLlamaEmbeddings(dim=dim)
    assert len(embedder.embed_query("hello world")) == dim
    assert embedder.identity == f"wordllama/l2_supercat-{dim}"
    assert embedder_identity(embedder) == embedder.identity


def test_wordllama_rejects_unsupported_dimension() -> None:
    with pytest.raises(ValueError, match="dim"):
        WordLlamaEmbeddings(dim=100)  # type: ignore[arg-type]


def test_wordllama_empty_text_is_a_zero_vector_not_nan() -> None:
    vector = np.array(WordLlamaEmbeddings().embed_query(""))
    assert not np.isnan(vector).any()
    assert np.all(vector == 0)


# ---------------------------------------------------------------- identity and normalisation


def test_embedder_identity_uses_identity_model_and_dimensions() -> None:
    class WithIdentity(DeterministicFakeEmbedding):
        @property
        def identity(self) -> str:
            return "custom/id"

    class Named(Embeddings):
        model = "text-embedding-3-small"
        dimensions = 512

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0] for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [1.0]

    assert embedder_identity(WithIdentity(size=4)) == "custom/id"
    named = embedder_identity(Named())
    assert named.endswith("Named:text-embedding-3-small:512")
    assert embedder_identity(DeterministicFakeEmbedding(size=4)) == (
        "langchain_core.embeddings.fake.DeterministicFakeEmbedding:4"
    )


def test_normalize_rows_keeps_zero_rows_zero() -> None:
    out = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0], [np.nan, 1.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [0.0, 1.0]])
    assert out.dtype == np.float32


def test_any_langchain_embeddings_works_with_the_router(small_jsonl: Path) -> None:
    embedder = DeterministicFakeEmbedding(size=16)
    router = ClusterRouter(n_clusters=4, top_p=2, embedder=embedder).fit(small_jsonl)
    assert router.n_features_in_ == 16
    assert router.embedder_id_ == "langchain_core.embeddings.fake.DeterministicFakeEmbedding:16"
    query = "What is 2 plus 2?"
    decision = router.route(query, 0.5)
    assert decision.model in {"acme/tiny", "acme/medium", "acme/large"}
    assert router.route(embedder.embed_query(query), 0.5) == decision
    assert router.route_batch([query, "Name a prime"], 0.5) == [
        router.route(q, 0.5).model for q in (query, "Name a prime")
    ]


# ---------------------------------------------------------------- embed_texts and the cache


def test_embed_texts_normalises_and_embeds_each_distinct_text_once(
    counting_embeddings_class: type,
) -> None:
    embedder = counting_embeddings_class()
    texts = ["What is 2 plus 2?", "What is the capital of Peru?", "What is 2 plus 2?"]
    vectors = embed_texts(embedder, texts)
    assert vectors.shape == (3, 4)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert sorted(embedder.embedded) == sorted(set(texts))  # the duplicate was embedded once

    again = embed_texts(embedder, list(reversed(texts)))
    assert len(embedder.embedded) == 2  # everything came from the process cache
    np.testing.assert_array_equal(again, vectors[::-1])


def test_embed_texts_cache_is_keyed_by_embedder_identity(counting_embeddings_class: type) -> None:
    first = counting_embeddings_class("tests/one")
    second = counting_embeddings_class("tests/two")
    embed_texts(first, ["a query"])
    embed_texts(second, ["a query"])
    assert first.embedded == ["a query"]
    assert second.embedded == ["a query"]  # another embedder: embedded again


def test_embed_texts_without_cache_always_embeds(counting_embeddings_class: type) -> None:
    embedder = counting_embeddings_class()
    embed_texts(embedder, ["x y"], cache=None)
    embed_texts(embedder, ["x y"], cache=None)
    assert embedder.embedded == ["x y", "x y"]


def test_embed_texts_of_nothing() -> None:
    assert embed_texts(DeterministicFakeEmbedding(size=3), []).shape[0] == 0


def test_embedding_cache_persists_to_disk(tmp_path: Path, counting_embeddings_class: type) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    texts = [f"What is the capital of country number {i}?" for i in range(5)]
    writer = counting_embeddings_class()
    stored = embed_texts(writer, texts, cache=EmbeddingCache(path))
    assert len(writer.embedded) == 5
    assert path.is_file()

    reader = counting_embeddings_class()  # a new process would start like this
    loaded = embed_texts(reader, texts, cache=EmbeddingCache(path))
    assert reader.embedded == []
    np.testing.assert_array_equal(loaded, stored)

    extra = embed_texts(reader, [*texts, "Write Python code"], cache=EmbeddingCache(path))
    assert reader.embedded == ["Write Python code"]
    np.testing.assert_array_equal(extra[:5], stored)


def test_embedding_cache_memory_limit_drops_oldest(tmp_path: Path) -> None:
    cache = EmbeddingCache(max_items=2)
    cache.put({"a": np.ones(2, np.float32), "b": np.zeros(2, np.float32)})
    cache.put({"c": np.full(2, 3.0, np.float32)})
    assert len(cache) == 2
    assert set(cache.get(["a", "b", "c"])) == {"b", "c"}

    disk = EmbeddingCache(tmp_path / "c.sqlite", max_items=1)
    disk.put({"a": np.ones(2, np.float32), "b": np.zeros(2, np.float32)})
    assert len(disk) == 1
    found = disk.get(["a", "b"])  # evicted from memory, still on disk
    np.testing.assert_array_equal(found["a"], [1.0, 1.0])
    np.testing.assert_array_equal(found["b"], [0.0, 0.0])


def test_refitting_and_evaluating_never_reembed(small_jsonl: Path, counting_embeddings) -> None:
    data = CalibrationData.from_path(small_jsonl)
    router = ClusterRouter(n_clusters=3, top_p=1, embedder=counting_embeddings)
    router.fit(data)
    assert sorted(counting_embeddings.embedded) == sorted(data.queries)
    assert len(set(data.queries)) == len(data.queries) == 90

    router.fit(data)
    ClusterRouter(n_clusters=5, top_p=2, embedder=counting_embeddings).fit(small_jsonl)
    evaluate_router(
        small_jsonl,
        ClusterRouter(n_clusters=3, top_p=1, embedder=counting_embeddings),
        alphas=[0.0, 0.5, 1.0],
        seeds=[0, 1],
    )
    assert len(counting_embeddings.embedded) == 90  # no text embedded twice


@pytest.mark.filterwarnings("ignore:A test tried to use socket.socket")
def test_unit_tests_have_no_network() -> None:
    import socket

    from pytest_socket import SocketBlockedError

    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_loading_wordllama_leaves_the_root_logger_alone() -> None:
    """wordllama calls logging.basicConfig(INFO) on import; the application's logging must
    not change because the router loaded its default embedder."""
    import importlib
    import logging
    import sys

    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    for name in [m for m in sys.modules if m == "wordllama" or m.startswith("wordllama.")]:
        del sys.modules[name]
    importlib.import_module("langchain_avengers.embeddings")._import_wordllama()
    assert (list(root.handlers), root.level) == before
