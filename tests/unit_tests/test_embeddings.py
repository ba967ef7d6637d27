"""Embeddings: the offline default embedder, embedder identity and the embedding cache."""

from __future__ import annotations

import dataclasses
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_avengers import ClusterRouter, EmbeddingCache, WordLlamaEmbeddings, embed_texts
from langchain_avengers.evaluation.evaluate import evaluate_router
from langchain_avengers.records.data import CalibrationData
from langchain_avengers.routing import embeddings as embeddings_module
from langchain_avengers.routing.embeddings import (
    MAX_EMBEDDED_CHARS,
    bounded_text,
    embedder_identity,
    normalize_rows,
    process_cache,
)

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
    router = ClusterRouter(n_clusters=4, nearest_clusters=2, embedder=embedder).fit(small_jsonl)
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
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=counting_embeddings)
    router.fit(data)
    assert sorted(counting_embeddings.embedded) == sorted(data.queries)
    assert len(set(data.queries)) == len(data.queries) == 90

    router.fit(data)
    ClusterRouter(n_clusters=5, nearest_clusters=2, embedder=counting_embeddings).fit(small_jsonl)
    evaluate_router(
        small_jsonl,
        ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=counting_embeddings),
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
    importlib.import_module("langchain_avengers.routing.embeddings")._import_wordllama()
    assert (list(root.handlers), root.level) == before


# ---------------------------------------------------------------- long texts


def test_a_long_text_is_embedded_from_a_bounded_head_and_tail(counting_embeddings) -> None:
    head, tail = "Summarise this contract. ", " Answer in French."
    long_text = head + "clause " * 800_000 + tail  # 5.6 MB
    short_text = "x" * MAX_EMBEDDED_CHARS  # at the bound: embedded whole
    embed_texts(counting_embeddings, [long_text, short_text])
    embedded_long, embedded_short = counting_embeddings.embedded
    assert len(embedded_long) == MAX_EMBEDDED_CHARS
    assert embedded_long.startswith(head)
    assert embedded_long.endswith(tail)
    assert embedded_short == short_text
    assert bounded_text(long_text) == embedded_long


def test_fit_and_route_with_a_5_mb_query_embed_a_bounded_text(
    small_jsonl: Path, counting_embeddings
) -> None:
    data = CalibrationData.from_path(small_jsonl)
    huge = "What is the capital of " + "Peru and " * 600_000 + "Chile?"
    data = dataclasses.replace(data, queries=[huge, *data.queries[1:]])
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=counting_embeddings).fit(data)
    router.route(huge + " today", 0.5)
    router.route_batch([huge, "Name a prime"], 0.5)
    assert max(len(t) for t in counting_embeddings.embedded) == MAX_EMBEDDED_CHARS


def test_wordllama_routes_a_5_mb_message_in_bounded_memory(small_jsonl: Path) -> None:
    router = ClusterRouter(n_clusters=3, nearest_clusters=1).fit(small_jsonl)
    huge = "Explain this log: " + "error at line 42; " * 300_000  # 5.4 MB
    tracemalloc.start()
    try:
        decision = router.route(huge, 0.5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decision.model == router.route(bounded_text(huge), 0.5).model
    assert peak < 50e6  # unbounded: the whole text's tokens x 256 floats, over 1 GB


# ---------------------------------------------------------------- one model, one cache


def test_many_threads_on_a_cold_process_load_wordllama_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wordllama = embeddings_module._import_wordllama()
    original = wordllama.WordLlama.load
    loads = []

    def slow_counted_load(*args: object, **kwargs: object) -> object:
        loads.append(threading.get_ident())
        time.sleep(0.2)  # a real load takes ~0.15 s: every thread arrives meanwhile
        return original(*args, **kwargs)

    monkeypatch.setattr(wordllama.WordLlama, "load", staticmethod(slow_counted_load))
    monkeypatch.setattr(embeddings_module, "_MODELS", {})  # a cold process
    embedder = WordLlamaEmbeddings()
    start = threading.Barrier(16)

    def embed(i: int) -> list[float]:
        start.wait()
        return embedder.embed_query(f"question number {i}")

    with ThreadPoolExecutor(16) as pool:
        vectors = list(pool.map(embed, range(16)))
    assert len(loads) == 1
    assert all(len(v) == 256 for v in vectors)


def test_the_process_cache_can_be_sized_and_cleared(counting_embeddings) -> None:
    cache = process_cache()
    embed_texts(counting_embeddings, ["one", "two", "three"])
    assert len(cache) == 3
    cache.resize(1)
    assert (len(cache), cache.max_items) == (1, 1)
    embed_texts(counting_embeddings, ["three"])  # the newest one was kept
    assert counting_embeddings.embedded == ["one", "two", "three"]
    cache.clear()
    assert len(cache) == 0
    embed_texts(counting_embeddings, ["three"])
    assert counting_embeddings.embedded[-1] == "three"
    cache.resize(0)
    embed_texts(counting_embeddings, ["four"])
    assert len(cache) == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_cache_sizes_must_be_counts(bad: object) -> None:
    with pytest.raises(ValueError, match="max_items must be an int >= 0"):
        EmbeddingCache(max_items=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_items must be an int >= 0"):
        process_cache().resize(bad)  # type: ignore[arg-type]
