"""Conversations: the text routing reads, and the pin stores (in-memory LRU, LangGraph store)."""

from __future__ import annotations

import logging
import threading

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.store.memory import InMemoryStore
from manual_clock import ManualClock

from langchain_avengers.policies.pins import (
    InMemoryPinStore,
    LangGraphPinStore,
    Pin,
    Pinning,
    PinStore,
    check_pin_store,
    check_pin_ttl,
)
from langchain_avengers.policies.routing_text import routing_text

SYSTEM = SystemMessage("You are a careful maths tutor.")
SUMMARY = HumanMessage(
    "Here is a summary of the conversation to date:\n\nwe proved things",
    additional_kwargs={"lc_source": "summarization"},
)
CHAT = [
    SYSTEM,
    HumanMessage("Prove that sqrt(2) is irrational."),
    AIMessage("Suppose sqrt(2) = p/q in lowest terms..."),
    HumanMessage("ok, and sqrt(3)?"),
    AIMessage("", tool_calls=[{"name": "calc", "args": {}, "id": "c1"}]),
    ToolMessage("1.732", tool_call_id="c1"),
]


def test_latest_human_reads_the_latest_message_a_person_wrote() -> None:
    assert routing_text(CHAT) == "ok, and sqrt(3)?"
    assert routing_text([*CHAT, SUMMARY]) == "ok, and sqrt(3)?", "a summary is not a turn"
    assert routing_text([SYSTEM]) == SYSTEM.content
    assert routing_text([]) == ""


def test_conversation_joins_system_prompt_earlier_turns_and_the_latest_message() -> None:
    text = routing_text(CHAT, "conversation", 10_000)
    assert text == (
        "You are a careful maths tutor.\n\nProve that sqrt(2) is irrational.\n\n"
        "Suppose sqrt(2) = p/q in lowest terms...\n\nok, and sqrt(3)?"
    )


def test_conversation_budget_keeps_the_latest_message_first_then_the_prompt_then_recent_turns() -> (
    None
):
    latest = len("ok, and sqrt(3)?")
    prompt = len(SYSTEM.content)
    assert routing_text(CHAT, "conversation", latest) == "ok, and sqrt(3)?"
    assert routing_text(CHAT, "conversation", 5) == "ok, a"
    with_prompt = routing_text(CHAT, "conversation", latest + 2 + prompt)
    assert with_prompt == f"{SYSTEM.content}\n\nok, and sqrt(3)?"
    squeezed = routing_text(CHAT, "conversation", latest + 2 + prompt + 2 + 12)
    assert squeezed == f"{SYSTEM.content}\n\nest terms...\n\nok, and sqrt(3)?"
    for budget in (1, 20, 60, 100, 200):
        assert len(routing_text(CHAT, "conversation", budget)) <= budget


# ---------------------------------------------------------------------------- stores


def test_in_memory_store_is_a_bounded_lru_that_drops_expired_pins() -> None:
    clock = ManualClock(100.0)
    store = InMemoryPinStore(max_entries=2, clock=clock)
    assert isinstance(store, PinStore)
    store.put("a", Pin("m1", 200.0))
    store.put("b", Pin("m2", 200.0))
    assert store.get("a") == Pin("m1", 200.0)  # "a" is now the most recently used
    store.put("c", Pin("m3", 150.0))
    assert store.get("b") is None, "the least recently used went first"
    assert len(store) == 2
    clock.now = 150.0
    assert store.get("c") is None, "expired"
    assert store.get("a") is not None
    with pytest.raises(ValueError, match="max_entries: expected an int >= 1"):
        InMemoryPinStore(max_entries=0)


def test_in_memory_store_is_thread_safe() -> None:
    store = InMemoryPinStore(max_entries=50)
    errors: list[BaseException] = []

    def hammer(worker: int) -> None:
        try:
            for i in range(500):
                store.put(f"k{(worker * 7 + i) % 80}", Pin(f"m{worker}", 1e12))
                store.get(f"k{i % 80}")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store) == 50


async def test_langgraph_store_shares_pins_between_adapters() -> None:
    shared = InMemoryStore()
    one, two = LangGraphPinStore(shared), check_pin_store(shared)
    assert isinstance(two, LangGraphPinStore)
    one.put("thread-1", Pin("google/gemini-2.5-pro", 1e12))
    assert two.get("thread-1") == Pin("google/gemini-2.5-pro", 1e12)
    await two.aput("thread-2", Pin("google/gemini-2.5-flash", 5.0))
    assert await one.aget("thread-2") == Pin("google/gemini-2.5-flash", 5.0)
    item = shared.get(("langchain_avengers", "pins"), "thread-1")
    assert item is not None
    assert item.value == {"model": "google/gemini-2.5-pro", "expires_at": 1e12}
    assert one.get("nobody") is None


def test_a_stored_value_that_is_not_a_pin_is_ignored_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shared = InMemoryStore()
    shared.put(("langchain_avengers", "pins"), "t", {"model": 3})
    with caplog.at_level(logging.WARNING, logger="langchain_avengers.policies.pins"):
        assert LangGraphPinStore(shared).get("t") is None
    assert "not one" in caplog.text


def test_pinning_reads_expiry_on_its_clock_and_pushes_it_on_each_call() -> None:
    clock = ManualClock(100.0)
    pins = Pinning(InMemoryPinStore(clock=clock), ttl_s=10.0, clock=clock)
    pins.keep("c", "m")
    assert pins.lookup("c") == Pin("m", 110.0)
    clock.now = 109.0
    pins.keep("c", "m")
    clock.now = 115.0
    assert pins.lookup("c") == Pin("m", 119.0)
    clock.now = 119.0
    assert pins.lookup("c") is None


def test_pin_options_are_checked() -> None:
    with pytest.raises(ValueError, match="pin_ttl: expected seconds > 0"):
        check_pin_ttl(0)
    with pytest.raises(TypeError, match=r"pin_store: expected a PinStore .* got dict"):
        check_pin_store({})


@pytest.mark.parametrize("kind", ["in_memory", "langgraph"])
async def test_compare_and_set_stores_only_over_the_pin_it_expects(kind: str) -> None:
    memory = InMemoryPinStore(clock=ManualClock(100.0))
    store = check_pin_store(memory if kind == "in_memory" else InMemoryStore())
    assert store is not None
    first, other = Pin("a", 200.0), Pin("b", 300.0)
    assert store.compare_and_set("c", first, None, 100.0) == first  # put-if-absent wins
    assert store.compare_and_set("c", other, None, 100.0) == first  # loses: "a" stands
    assert store.compare_and_set("c", other, "x", 100.0) == first
    assert await store.acompare_and_set("c", other, "a", 100.0) == other  # moves a -> b
    assert store.get("c") == other
    # an expired pin counts as absent: put-if-absent wins over it, a move from it fails
    assert store.compare_and_set("c", first, "b", 300.0) is None
    assert await store.acompare_and_set("c", Pin("a", 500.0), None, 300.0) == Pin("a", 500.0)
