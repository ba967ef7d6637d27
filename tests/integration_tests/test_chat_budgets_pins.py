"""AvengersChatModel's per-call cost cap, spend pacer and conversation pins, over real HTTP.

Expected costs are recomputed here from the router's own decision and the catalog's prices, so
a cap can be set between two models and the test says which one it must exclude.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fake_pacer import ScriptedPacer
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import ConfigurableField
from langchain_core.tracers.context import collect_runs
from langgraph.store.memory import InMemoryStore
from local_chat import Joke, magic_function, make_llm
from manual_clock import ManualClock

from langchain_avengers import AvengersChatModel
from langchain_avengers.chat_models.base import NoCapableModelError
from langchain_avengers.chat_models.costs import format_usd
from langchain_avengers.policies.pacing import expected_call_cost
from langchain_avengers.policies.pins import InMemoryPinStore
from langchain_avengers.policies.routing_text import routing_text
from langchain_avengers.testing import OfflineOpenRouter

QUERY = "Prove that there are infinitely many prime numbers."
FOLLOW_UP = "ok"
PRO, FLASH = "google/gemini-2.5-pro", "google/gemini-2.5-flash"


def call_costs(llm: AvengersChatModel, router: Any, text: str, alpha: float) -> dict[str, float]:
    """Each pool model's expected USD for a one-message call of ``text``."""
    tokens = llm.get_num_tokens_from_messages([HumanMessage(text)])
    return {
        c.model: expected_call_cost(tokens, llm.profile_of(c.model), c.expected_cost)  # type: ignore[misc]
        for c in router.route(text, alpha).candidates
    }


def first_choice(router: Any, text: str, alpha: float, models: list[str] | None = None) -> str:
    return router.route(text, alpha, allowed_models=models).model


# ---------------------------------------------------------------------------- max_cost_per_call


def test_max_cost_per_call_excludes_models_expected_to_cost_more(
    server: OfflineOpenRouter, router: Any
) -> None:
    llm = make_llm(server)
    costs = call_costs(llm, router, QUERY, 1.0)
    assert first_choice(router, QUERY, 1.0) == PRO
    cap = max(c for m, c in costs.items() if m != PRO) * 1.01
    assert costs[PRO] > cap
    capped = make_llm(server, max_cost_per_call=cap)
    with collect_runs() as collected:
        message = capped.invoke(QUERY, alpha=1.0)
    rest = [m for m in router.models_ if m != PRO]
    assert message.response_metadata["model_name"] == first_choice(router, QUERY, 1.0, rest)
    info = message.response_metadata["avengers"]
    assert info["over_cost_cap"] == {PRO: pytest.approx(costs[PRO])}
    assert info["excluded"][PRO] == (
        f"expected cost {format_usd(costs[PRO])} exceeds max_cost_per_call {format_usd(cap)}"
    )
    assert info["max_cost_per_call"] == cap
    metadata = collected.traced_runs[0].extra["metadata"]
    assert metadata["avengers_over_cost_cap"] == {PRO: pytest.approx(costs[PRO])}
    assert PRO not in server.models_called()


def test_max_cost_per_call_per_call_and_bound(server: OfflineOpenRouter, router: Any) -> None:
    llm = make_llm(server)
    cap = max(c for m, c in call_costs(llm, router, QUERY, 1.0).items() if m != PRO) * 1.01
    per_call = llm.invoke(QUERY, alpha=1.0, max_cost_per_call=cap)
    bound = llm.bind(max_cost_per_call=cap).bind_tools([magic_function]).invoke(QUERY, alpha=1.0)
    free = llm.invoke(QUERY, alpha=1.0)
    assert PRO in per_call.response_metadata["avengers"]["over_cost_cap"]
    assert PRO in bound.response_metadata["avengers"]["over_cost_cap"]
    assert free.response_metadata["model_name"] == PRO
    assert free.response_metadata["avengers"]["over_cost_cap"] == {}


def test_a_cap_no_model_meets_fails_before_any_request(server: OfflineOpenRouter) -> None:
    llm = make_llm(server, max_cost_per_call=1e-9)
    with pytest.raises(NoCapableModelError, match=r"max_cost_per_call \$0\.000000001 .*google"):
        llm.invoke(QUERY)
    with pytest.raises(NoCapableModelError):
        list(llm.stream(QUERY))
    assert server.requests == []
    with pytest.raises(ValueError, match="max_cost_per_call: expected a number of USD > 0"):
        make_llm(server, max_cost_per_call=0)
    with pytest.raises(ValueError, match="max_cost_per_call: expected a number of USD > 0"):
        make_llm(server).invoke(QUERY, max_cost_per_call="cheap")


# ---------------------------------------------------------------------------- pacer


def test_the_pacer_sets_alpha_unless_the_call_does(server: OfflineOpenRouter, router: Any) -> None:
    pacer = ScriptedPacer([0.0, 1.0])
    llm = make_llm(server, pacer=pacer)
    cheap, strong = llm.invoke(QUERY), llm.invoke(QUERY)
    assert cheap.response_metadata["model_name"] == first_choice(router, QUERY, 0.0)
    assert strong.response_metadata["model_name"] == first_choice(router, QUERY, 1.0)
    assert cheap.response_metadata["avengers"]["alpha_source"] == "pacer"
    given = llm.invoke(QUERY, alpha=1.0)
    bound = llm.bind(alpha=1.0).invoke(QUERY)
    assert given.response_metadata["avengers"]["alpha_source"] == "call"
    assert bound.response_metadata["avengers"]["alpha_source"] == "bound"
    assert pacer.asked == 2, "an explicit alpha never asks the pacer"
    answers = [cheap, strong, given, bound]
    assert pacer.costs == [pytest.approx(m.response_metadata["cost"]) for m in answers]


async def test_the_pacer_hears_each_answer_once_streams_and_fallbacks_included(
    server: OfflineOpenRouter, router: Any
) -> None:
    pacer = ScriptedPacer([1.0])
    llm = make_llm(server, pacer=pacer)
    order = [c.model for c in router.route(QUERY, 1.0).candidates]
    server.faults.fail_models[order[0]] = 503
    fell_back = llm.invoke(QUERY)
    assert fell_back.response_metadata["model_name"] == order[1]
    streamed = list(llm.stream(QUERY))
    async_streamed = [chunk async for chunk in llm.astream(QUERY)]
    billed = [
        fell_back.response_metadata["cost"],
        streamed[-1].response_metadata["cost"],
        async_streamed[-1].response_metadata["cost"],
    ]
    assert pacer.costs == [pytest.approx(c) for c in billed]


def test_the_pacer_wins_over_the_default_and_configured_alpha(
    server: OfflineOpenRouter, router: Any
) -> None:
    pacer = ScriptedPacer([0.0])
    llm = make_llm(server, alpha=1.0, pacer=pacer)
    assert llm.invoke(QUERY).response_metadata["avengers"]["alpha"] == 0.0
    configurable = llm.configurable_fields(temperature=ConfigurableField(id="temperature"))
    configured = configurable.invoke(QUERY, config={"configurable": {"temperature": 0.2}})
    assert configured.response_metadata["avengers"]["alpha_source"] == "pacer"
    structured = llm.with_structured_output(Joke, alpha=1.0, include_raw=True).invoke(QUERY)
    assert structured["raw"].response_metadata["avengers"]["alpha_source"] == "bound"
    with pytest.raises(ValueError, match=r"pacer: expected an object with alpha\(\) and record"):
        make_llm(server, pacer=object())
    dumped = make_llm(server, pacer=ScriptedPacer([0.5])).model_dump_json()
    assert '"pacer":"ScriptedPacer"' in dumped


# ---------------------------------------------------------------------------- pins


def test_a_thread_stays_on_its_first_model(server: OfflineOpenRouter, router: Any) -> None:
    llm = make_llm(server, pin_conversations=True)
    thread = {"configurable": {"thread_id": "thread-1"}}
    first = llm.invoke(QUERY, thread, alpha=1.0)
    assert first.response_metadata["avengers"]["pinned"] is None
    with collect_runs() as collected:
        follow_up = llm.invoke(FOLLOW_UP, thread, alpha=0.0)
    assert follow_up.response_metadata["model_name"] == first.response_metadata["model_name"]
    assert follow_up.response_metadata["avengers"]["pinned"] == {
        "source": "conversation",
        "model": first.response_metadata["model_name"],
    }
    assert collected.traced_runs[0].extra["metadata"]["avengers_pinned"] == "conversation"
    other = llm.invoke(FOLLOW_UP, {"configurable": {"thread_id": "thread-2"}}, alpha=0.0)
    unpinned = make_llm(server).invoke(FOLLOW_UP, thread, alpha=0.0)
    assert other.response_metadata["model_name"] == first_choice(router, FOLLOW_UP, 0.0)
    assert unpinned.response_metadata["avengers"]["pinned"] is None
    assert first_choice(router, FOLLOW_UP, 0.0) != first.response_metadata["model_name"]


async def test_streams_async_calls_and_session_ids_are_pinned_too(
    server: OfflineOpenRouter,
) -> None:
    llm = make_llm(server, pin_conversations=True)
    first = llm.invoke(QUERY, alpha=1.0, session_id="user-42")
    model = first.response_metadata["model_name"]
    streamed = list(llm.stream(FOLLOW_UP, alpha=0.0, session_id="user-42"))
    assert streamed[0].response_metadata["model_name"] == model
    thread = {"configurable": {"thread_id": "t-async"}}
    await llm.ainvoke(QUERY, thread, alpha=1.0)
    again = await llm.ainvoke(FOLLOW_UP, thread, alpha=0.0)
    assert again.response_metadata["avengers"]["pinned"]["source"] == "conversation"
    with pytest.raises(ValueError, match="session_id: conversations are not pinned"):
        make_llm(server).invoke(QUERY, session_id="user-42")
    with pytest.raises(ValueError, match="session_id: expected a non-empty string"):
        llm.invoke(QUERY, session_id="")


def test_a_capability_breaks_the_pin_and_the_conversation_moves(
    server: OfflineOpenRouter, router: Any
) -> None:
    llm = make_llm(server, pin_conversations=True, profiles={PRO: {"tool_calling": False}})
    thread = {"configurable": {"thread_id": "tools"}}
    assert llm.invoke(QUERY, thread, alpha=1.0).response_metadata["model_name"] == PRO
    with_tools = llm.bind_tools([magic_function]).invoke(
        [HumanMessage(QUERY), HumanMessage("What is magic_function(3)?")], thread, alpha=1.0
    )
    moved_to = with_tools.response_metadata["model_name"]
    assert moved_to != PRO
    assert with_tools.response_metadata["avengers"]["pin_broken"] == [
        {
            "source": "conversation",
            "model": PRO,
            "reason": "its profile says no tool_calling support",
        }
    ]
    later = llm.invoke(FOLLOW_UP, thread, alpha=1.0)
    assert later.response_metadata["model_name"] == moved_to, "the pin moved with the change"


def test_two_chat_models_share_pins_through_a_langgraph_store(server: OfflineOpenRouter) -> None:
    store = InMemoryStore()
    worker_a = make_llm(server, pin_conversations=True, pin_store=store, alpha=1.0)
    worker_b = make_llm(server, pin_conversations=True, pin_store=store, alpha=0.0)
    thread = {"configurable": {"thread_id": "shared"}}
    first = worker_a.invoke(QUERY, thread)
    second = worker_b.invoke(FOLLOW_UP, thread)
    assert second.response_metadata["model_name"] == first.response_metadata["model_name"]
    assert second.response_metadata["avengers"]["pinned"]["source"] == "conversation"
    item = store.get(("langchain_avengers", "pins"), "shared")
    assert item is not None
    assert item.value["model"] == first.response_metadata["model_name"]
    own = InMemoryPinStore()
    make_llm(server, pin_conversations=True, pin_store=own).invoke(QUERY, thread)
    assert len(own) == 1, "an empty store given is the store used"


def test_an_idle_conversation_is_routed_afresh_after_the_ttl(
    server: OfflineOpenRouter, router: Any
) -> None:
    clock = ManualClock(time.time())  # the store reads expiry on this clock, not the wall's
    store = InMemoryPinStore(clock=clock)
    llm = make_llm(server, pin_conversations=True, pin_ttl=60, pin_store=store)
    thread = {"configurable": {"thread_id": "idle"}}
    llm.invoke(QUERY, thread, alpha=1.0)
    clock.now += 59
    kept = llm.invoke(FOLLOW_UP, thread, alpha=0.0)
    assert kept.response_metadata["avengers"]["pinned"]["source"] == "conversation"
    clock.now += 61  # 60 s after the last use (the follow-up renewed the pin)
    fresh = llm.invoke(FOLLOW_UP, thread, alpha=0.0)
    assert fresh.response_metadata["avengers"]["pinned"] is None
    assert fresh.response_metadata["model_name"] == first_choice(router, FOLLOW_UP, 0.0)
    with pytest.raises(ValueError, match="pin_ttl: expected seconds > 0"):
        make_llm(server, pin_ttl=-1)


# ---------------------------------------------------------------------------- routing_text


def test_conversation_routing_text_reads_the_system_prompt_and_earlier_turns(
    server: OfflineOpenRouter, router: Any
) -> None:
    messages = [
        SystemMessage("You are a number theorist. Prove every claim rigorously."),
        HumanMessage(QUERY),
        HumanMessage(FOLLOW_UP),
    ]
    llm = make_llm(server, routing_text="conversation", routing_text_chars=300)
    message = llm.invoke(messages, alpha=0.5)
    text = routing_text(messages, "conversation", 300)
    assert "number theorist" in text
    assert message.response_metadata["model_name"] == first_choice(router, text, 0.5)
    default = make_llm(server).invoke(messages, alpha=0.5)
    assert default.response_metadata["model_name"] == first_choice(router, FOLLOW_UP, 0.5)
