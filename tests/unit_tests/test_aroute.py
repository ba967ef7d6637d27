"""ClusterRouter.aroute: the same decisions as route, without blocking the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from langchain_avengers import ClusterRouter

QUERIES = ["What is 7 + 5?", "What is the capital of Peru?", "Write a Python function to sort."]


@pytest.fixture
def router(small_jsonl: Path, keyword_embeddings: Embeddings) -> ClusterRouter:
    return ClusterRouter(n_clusters=3, nearest_clusters=2, embedder=keyword_embeddings).fit(
        small_jsonl
    )


async def test_aroute_agrees_with_route_off_the_event_loop(router: ClusterRouter) -> None:
    threads: list[str] = []
    embedder = router.embedder
    assert embedder is not None
    original = embedder.embed_documents

    def recording(texts: list[str]) -> list[list[float]]:
        threads.append(threading.current_thread().name)
        return original(texts)

    embedder.embed_documents = recording  # type: ignore[method-assign]
    for query in QUERIES:
        for alpha in (0.0, 0.5, 1.0):
            decision = await router.aroute(query, alpha, nearest_clusters=1)
            assert decision == router.route(query, alpha, nearest_clusters=1)
    on_the_loop = threading.current_thread().name
    assert len(threads) == 2 * 9
    assert on_the_loop not in threads[::2], "aroute embeds in the executor"
    assert set(threads[1::2]) == {on_the_loop}


async def test_aroute_awaits_an_embedder_with_its_own_async_method(
    router: ClusterRouter, keyword_embeddings: Embeddings
) -> None:
    class AsyncKeywords(type(keyword_embeddings)):  # type: ignore[misc]
        awaited: ClassVar[list[str]] = []

        async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
            self.awaited.extend(texts)
            await asyncio.sleep(0)
            return self.embed_documents(texts)

    router.embedder = AsyncKeywords()
    decisions = await asyncio.gather(*(router.aroute(q, 0.5) for q in QUERIES))
    assert AsyncKeywords.awaited == QUERIES
    assert list(decisions) == [router.route(q, 0.5) for q in QUERIES]


async def test_aroute_takes_vectors_and_refuses_what_route_refuses(router: ClusterRouter) -> None:
    vector = np.array([0.0, 1.0, 0.0, 0.1])
    assert await router.aroute(vector, 0.3) == router.route(vector, 0.3)
    with pytest.raises(ValueError, match="allowed_models"):
        await router.aroute(QUERIES[0], allowed_models=["nope"])
