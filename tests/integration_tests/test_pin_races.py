"""Conversation pins under concurrency: a conversation's first calls race for its pin.

Many threads call the chat model at once, several calls per conversation, each at an alpha
that alone would route it to a different model. With a pin store whose first pin is atomic,
every answer of a conversation comes from the model its pin names; with a plain read-then-write
the last writer wins and the earlier answers came from a model that is no longer pinned.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from langgraph.store.memory import InMemoryStore
from local_chat import make_llm
from pin_race import ALPHAS, QUERY, SESSIONS, race

from langchain_avengers.policies.pins import InMemoryPinStore, check_pin_store
from langchain_avengers.testing import OfflineOpenRouter


@pytest.mark.parametrize("kind", ["in_memory", "langgraph"])
def test_every_answer_of_a_conversation_comes_from_its_pinned_model(
    server: OfflineOpenRouter, router: Any, kind: str
) -> None:
    cheap, dear = router.route(QUERY, 0.0).model, router.route(QUERY, 1.0).model
    assert cheap != dear  # otherwise the alphas would not race for different models
    given = InMemoryPinStore() if kind == "in_memory" else InMemoryStore()
    store = check_pin_store(given)
    assert store is not None
    answered, store = race(server, store)
    mixed = {s: sorted(m) for s, m in answered.items() if len(m) > 1}
    assert mixed == {}, f"{len(mixed)} of {SESSIONS} conversations answered by two models"
    for session, models in answered.items():
        pin = store.get(session)
        assert pin is not None, session
        assert {pin.model} == models, session


@pytest.mark.parametrize("kind", ["in_memory", "langgraph"])
async def test_async_first_calls_follow_the_pin_that_won(
    server: OfflineOpenRouter, kind: str
) -> None:
    store = check_pin_store(InMemoryPinStore() if kind == "in_memory" else InMemoryStore())
    assert store is not None
    llm = make_llm(server, pin_conversations=True, pin_store=store)
    jobs = [(f"a{s}", alpha) for s in range(64) for alpha in ALPHAS]
    messages = await asyncio.gather(
        *(llm.ainvoke(QUERY, alpha=alpha, session_id=session) for session, alpha in jobs)
    )
    answered: dict[str, set[str]] = defaultdict(set)
    for (session, _), message in zip(jobs, messages, strict=True):
        answered[session].add(message.response_metadata["model_name"])
    for session, models in answered.items():
        pin = store.get(session)
        assert pin is not None, session
        assert {pin.model} == models, session
