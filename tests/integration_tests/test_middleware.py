"""AvengersMiddleware in real ``create_agent`` agents, real tools, real HTTP to the local server.

Every model call goes through LangChain's agent loop and the OpenAI SDK to the local
OpenRouter-compatible server, which answers a request offering tools with a tool call and a
request ending in a tool result with a sentence naming that result, so each human turn of
these agents is two model calls. Expected models and costs are recomputed from the router.
"""

from __future__ import annotations

from typing import Any

import pytest
from fake_pacer import ScriptedPacer
from langchain.agents import create_agent
from langchain.agents.middleware import (
    ModelCallLimitMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
    SummarizationMiddleware,
)
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langchain_core.tracers.context import collect_runs
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from local_chat import make_llm
from pydantic import BaseModel

from langchain_avengers import AvengersChatModel, load_default_router
from langchain_avengers.agents.middleware import AvengersMiddleware
from langchain_avengers.agents.state import RunBudgetExceededError
from langchain_avengers.chat_models.base import NoCapableModelError
from langchain_avengers.policies.pacing import expected_call_cost
from langchain_avengers.testing import OfflineOpenRouter

QUESTION = "Use multiply to compute 6 times 7."
SECOND = "Now use multiply to compute 3 times 5."
FALLBACK = "openai/gpt-5"
"""A model the server knows but the router's pool does not (ModelFallbackMiddleware's)."""


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


class Product(BaseModel):
    """The product of two numbers."""

    value: float


def openai_model(server: OfflineOpenRouter, model: str) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=server.base_url, api_key="k", max_retries=0)


def ask(text: str = QUESTION) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


def answers(result: dict[str, Any]) -> list[AIMessage]:
    return [m for m in result["messages"] if isinstance(m, AIMessage)]


def first_call_costs(llm: AvengersChatModel, router: Any, text: str) -> dict[str, float]:
    """Each pool model's expected USD for an agent's first call on ``text`` with ``multiply``."""
    tokens = llm.get_num_tokens_from_messages([HumanMessage(text)], tools=[multiply])
    return {
        c.model: expected_call_cost(tokens, llm.profile_of(c.model), c.expected_cost)  # type: ignore[misc]
        for c in router.route(text, 0.5).candidates
    }


# ---------------------------------------------------------------------------- one model per turn


def test_one_model_per_turn_while_the_pacer_moves_alpha(
    server: OfflineOpenRouter, router: Any
) -> None:
    strong, cheap = router.route(QUESTION, 1.0).model, router.route(QUESTION, 0.0).model
    assert strong != cheap
    plain = create_agent(make_llm(server, pacer=ScriptedPacer([1.0, 0.0])), tools=[multiply])
    plain.invoke(ask())
    assert server.models_called() == [strong, cheap], "without the middleware the turn drifts"
    server.reset()

    pacer = ScriptedPacer([1.0, 0.0])
    llm = make_llm(server, pacer=pacer)
    agent = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])
    result = agent.invoke(ask())
    assert server.models_called() == [strong, strong]
    first, second = answers(result)
    assert second.response_metadata["avengers"]["pinned"] == {"source": "turn", "model": strong}
    costs = [first.response_metadata["cost"], second.response_metadata["cost"]]
    assert result["avengers_turn"] == {
        "model": strong,
        "calls": 2,
        "cost": pytest.approx(sum(costs)),
        "unpriced_calls": 0,
    }
    assert result["avengers_run_cost"] == pytest.approx(sum(costs))
    assert pacer.asked == 2
    assert pacer.costs == [pytest.approx(c) for c in costs], "each answer told once"


def test_a_new_human_turn_is_routed_afresh(server: OfflineOpenRouter, router: Any) -> None:
    llm = make_llm(server)
    agent = create_agent(
        llm, tools=[multiply], middleware=[AvengersMiddleware(llm)], checkpointer=InMemorySaver()
    )
    thread = {"configurable": {"thread_id": "turns"}}
    first = agent.invoke(ask(), thread, context={"alpha": 1.0})
    second = agent.invoke(ask(SECOND), thread, context={"alpha": 0.0})
    assert first["avengers_turn"]["model"] == router.route(QUESTION, 1.0).model
    assert second["avengers_turn"]["model"] == router.route(SECOND, 0.0).model
    assert second["avengers_turn"]["calls"] == 2
    assert second["avengers_run_cost"] == pytest.approx(second["avengers_turn"]["cost"])


def test_context_length_forces_a_change_mid_turn(server: OfflineOpenRouter, router: Any) -> None:
    strong = router.route(QUESTION, 1.0).model
    probe = make_llm(server)
    tokens = probe.get_num_tokens_from_messages([HumanMessage(QUESTION)], tools=[multiply])
    llm = make_llm(server, profiles={strong: {"max_input_tokens": tokens + 3}})
    agent = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])
    result = agent.invoke(ask(), context={"alpha": 1.0})
    first, second = answers(result)
    assert first.response_metadata["model_name"] == strong
    assert second.response_metadata["model_name"] != strong
    broken = second.response_metadata["avengers"]["pin_broken"]
    assert broken[0]["source"] == "turn"
    assert broken[0]["model"] == strong
    assert broken[0]["reason"].endswith(f"exceed max_input_tokens={tokens + 3}")
    assert result["avengers_turn"]["model"] == second.response_metadata["model_name"]


# ---------------------------------------------------------------------------- run budgets


def test_run_budget_moves_the_turn_to_cheaper_models(
    server: OfflineOpenRouter, router: Any
) -> None:
    llm = make_llm(server)
    strong = router.route(QUESTION, 1.0).model
    cap = first_call_costs(llm, router, QUESTION)[strong] * (1 + 1e-9)
    agent = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])
    result = agent.invoke(ask(), context={"alpha": 1.0, "max_run_cost": cap})
    first, second = answers(result)
    assert first.response_metadata["model_name"] == strong
    info = second.response_metadata["avengers"]
    assert second.response_metadata["model_name"] != strong
    assert info["pin_broken"][0]["reason"].startswith("expected cost $")
    assert "left of max_run_cost" in info["pin_broken"][0]["reason"]
    assert strong in info["over_cost_cap"]
    assert result["avengers_run_cost"] < cap


def test_a_per_call_cap_from_the_context(server: OfflineOpenRouter, router: Any) -> None:
    llm = make_llm(server)
    strong = router.route(QUESTION, 1.0).model
    costs = first_call_costs(llm, router, QUESTION)
    cap = max(c for m, c in costs.items() if m != strong) * 1.01
    agent = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])
    result = agent.invoke(ask(), context={"alpha": 1.0, "max_cost_per_call": cap})
    first = answers(result)[0]
    assert first.response_metadata["model_name"] != strong
    assert first.response_metadata["avengers"]["over_cost_cap"] == {
        strong: pytest.approx(costs[strong])
    }


def test_a_run_whose_budget_is_spent_ends_with_a_message(
    server: OfflineOpenRouter, router: Any
) -> None:
    llm = make_llm(server)
    costs = first_call_costs(llm, router, QUESTION)
    cheapest = min(costs, key=lambda m: costs[m])
    agent = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])

    nothing = agent.invoke(ask(), context={"max_run_cost": costs[cheapest] / 2})
    assert server.requests == []
    stop = nothing["messages"][-1]
    assert stop.content.startswith("Run budget reached: this run has spent $0 of")
    assert f"({cheapest})" in stop.content
    assert stop.response_metadata["avengers"]["stopped"] == "max_run_cost"

    one_call = agent.invoke(ask(), context={"max_run_cost": costs[cheapest] * (1 + 1e-9)})
    assert server.models_called() == [cheapest], "the tool call, then the budget is spent"
    assert [type(m).__name__ for m in one_call["messages"]] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert one_call["messages"][-1].content.startswith("Run budget reached")

    raising = create_agent(
        llm,
        tools=[multiply],
        middleware=[AvengersMiddleware(llm, budget_exit_behavior="error")],
    )
    with pytest.raises(RunBudgetExceededError, match="Run budget reached") as raised:
        raising.invoke(ask(), context={"max_run_cost": costs[cheapest] / 2})
    assert raised.value.max_run_cost == costs[cheapest] / 2


def test_context_options_are_checked_and_the_application_context_left_alone(
    server: OfflineOpenRouter,
) -> None:
    llm = make_llm(server)
    agent = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])
    with pytest.raises(ValueError, match=r"runtime\.context: alpha must be in \[0, 1\]"):
        agent.invoke(ask(), context={"alpha": 2})
    with pytest.raises(ValueError, match=r"runtime\.context\['max_run_cost'\]: expected"):
        agent.invoke(ask(), context={"max_run_cost": "lots"})
    result = agent.invoke(ask(), context={"user_id": "u-1", "alpha": 0.0})
    assert result["avengers_turn"]["calls"] == 2
    with pytest.warns(UserWarning, match=r"runtime\.context\['alpah'\].*did you mean 'alpha'"):
        agent.invoke(ask(), context={"alpah": 0.0})


def test_no_capable_model_fails_the_run_before_any_request(server: OfflineOpenRouter) -> None:
    llm = make_llm(
        server,
        profiles={m: {"tool_calling": False} for m in load_default_router().models_},
    )
    agent = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])
    with pytest.raises(NoCapableModelError, match="tool_calling"):
        agent.invoke(ask())
    assert server.requests == []


# ---------------------------------------------------------------------------- composition


def test_composes_with_retry_fallback_call_limit_and_summarization(
    server: OfflineOpenRouter, router: Any
) -> None:
    llm = make_llm(server, max_fallbacks=0)
    routed, second_model = router.route(QUESTION, 0.5).model, router.route(SECOND, 0.5).model
    summarizer = llm.with_routing(models=[m for m in router.models_ if m != second_model])
    agent = create_agent(
        llm,
        tools=[multiply],
        middleware=[
            AvengersMiddleware(llm),
            ModelCallLimitMiddleware(thread_limit=5, exit_behavior="end"),
            ModelFallbackMiddleware(openai_model(server, FALLBACK)),
            ModelRetryMiddleware(
                max_retries=1, initial_delay=0.0, jitter=False, on_failure="error"
            ),
            SummarizationMiddleware(
                model=summarizer, trigger=("messages", 6), keep=("messages", 3)
            ),
        ],
        checkpointer=InMemorySaver(),
    )
    thread = {"configurable": {"thread_id": "composed"}}

    server.faults.fail_next[routed] = [503]
    one = agent.invoke(ask(), thread)
    assert server.models_called() == [routed, routed, routed], "retried once, then the tool turn"
    assert one["avengers_turn"] == {
        "model": routed,
        "calls": 2,
        "cost": pytest.approx(sum(m.response_metadata["cost"] for m in answers(one))),
        "unpriced_calls": 0,
    }

    server.reset()
    server.faults.fail_models[second_model] = 500
    two = agent.invoke(ask(SECOND), thread)
    called = server.models_called()
    assert called.count(second_model) == 4, "two calls, each tried twice by the retry middleware"
    assert FALLBACK in called
    from_fallback = [m for m in answers(two) if m.response_metadata.get("model_name") == FALLBACK]
    assert from_fallback
    assert all("avengers" not in m.response_metadata for m in from_fallback)
    assert two["avengers_turn"]["unpriced_calls"] == 2, "answers of other models are not priced"
    summaries = [
        m for m in two["messages"] if m.additional_kwargs.get("lc_source") == "summarization"
    ]
    assert len(summaries) == 1, "summarised before the turn's second call"

    server.reset()
    three = agent.invoke(ask(QUESTION), thread)
    assert three["messages"][-1].content.startswith("Model call limits exceeded")
    assert len(server.models_called()) == 1 + 1, "one summary call and the fifth model call"


async def test_async_agent_with_a_mapping_pool_and_composed_middleware(
    server: OfflineOpenRouter, router: Any
) -> None:
    pool = {m: openai_model(server, m) for m in router.models_}
    middleware = AvengersMiddleware(pool, router=router)
    agent = create_agent(
        pool[router.models_[0]],
        tools=[multiply],
        middleware=[middleware, ModelRetryMiddleware(max_retries=1, initial_delay=0.0)],
    )
    result = await agent.ainvoke(ask(), context={"alpha": 1.0})
    strong = router.route(QUESTION, 1.0).model
    assert server.models_called() == [strong, strong]
    assert [m.response_metadata["model_name"] for m in answers(result)] == [strong, strong]
    assert result["avengers_turn"]["cost"] == pytest.approx(
        sum(m.response_metadata["cost"] for m in answers(result))
    )


# ---------------------------------------------------------------------------- mapping pools


def test_a_mapping_pool_prices_answers_with_the_users_prices(
    server: OfflineOpenRouter, router: Any
) -> None:
    pool = {m: openai_model(server, m) for m in router.models_}
    prices = {m: {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0} for m in pool}
    server.faults.omit_cost_models = set(pool)
    agent = create_agent(
        pool[router.models_[0]],
        tools=[multiply],
        middleware=[AvengersMiddleware(pool, router=router, profiles=prices)],
    )
    with collect_runs() as collected:
        result = agent.invoke(ask(), context={"alpha": 0.0})
    cheap = router.route(QUESTION, 0.0).model
    for message in answers(result):
        usage = message.usage_metadata
        assert usage is not None
        assert message.response_metadata["model_name"] == cheap
        assert message.response_metadata["avengers"]["cost_source"] == "list_prices"
        expected = usage["input_tokens"] * 1e-6 + usage["output_tokens"] * 2e-6
        assert message.response_metadata["cost"] == pytest.approx(expected)
        assert usage["total_cost"] == pytest.approx(expected)  # type: ignore[typeddict-item]
    llm_runs = [r for r in _all_runs(collected.traced_runs) if r.run_type == "llm"]
    assert [r.extra["metadata"]["avengers_model"] for r in llm_runs] == [cheap, cheap]


def _all_runs(runs: list[Any]) -> list[Any]:
    found = []
    for run in runs:
        found.append(run)
        found.extend(_all_runs(run.child_runs))
    return found


def test_a_mapping_pool_falls_back_along_the_routing_order(
    server: OfflineOpenRouter, router: Any
) -> None:
    pool = {m: openai_model(server, m) for m in router.models_}
    order = [c.model for c in router.route(QUESTION, 1.0).candidates]
    server.faults.fail_models[order[0]] = 503
    agent = create_agent(
        pool[order[0]],
        tools=[multiply],
        middleware=[AvengersMiddleware(pool, router=router, alpha=1.0)],
    )
    result = agent.invoke(ask())
    first = answers(result)[0]
    assert first.response_metadata["model_name"] == order[1]
    assert first.response_metadata["avengers"]["fallbacks"][0]["model"] == order[0]


def test_mapping_pool_construction_is_checked(server: OfflineOpenRouter, router: Any) -> None:
    pool = {m: openai_model(server, m) for m in router.models_}
    with pytest.raises(ValueError, match="router: a mapping pool needs the fitted router"):
        AvengersMiddleware(pool)
    with pytest.raises(ValueError, match=r"model id\(s\) \['acme/x'\] are not in the router"):
        AvengersMiddleware({"acme/x": pool[router.models_[0]]}, router=router)
    with pytest.raises(TypeError, match=r"pool\['a'\]: expected a LangChain chat model"):
        AvengersMiddleware({"a": "gpt-4o"}, router=router)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"profiles: model id\(s\) \['acme/x'\]"):
        AvengersMiddleware(pool, router=router, profiles={"acme/x": {}})
    with pytest.raises(TypeError, match="router= and profiles= are for a mapping pool"):
        AvengersMiddleware(make_llm(server), router=router)
    with pytest.raises(ValueError, match=r"alpha, pin_conversations come from the chat model"):
        AvengersMiddleware(make_llm(server), alpha=0.2, pin_conversations=True)
    with pytest.raises(ValueError, match="give alpha= or pacer=, not both"):
        AvengersMiddleware(pool, router=router, alpha=0.2, pacer=ScriptedPacer([0.1]))
    with pytest.raises(ValueError, match="routing_text: expected one of"):
        AvengersMiddleware(pool, router=router, routing_text="everything")
    with pytest.raises(ValueError, match="budget_exit_behavior: expected 'end' or 'error'"):
        AvengersMiddleware(pool, router=router, budget_exit_behavior="stop")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- pins, streams


def test_conversation_pins_hold_across_runs(server: OfflineOpenRouter, router: Any) -> None:
    llm = make_llm(server, pin_conversations=True)
    agent = create_agent(
        llm,
        tools=[multiply],
        middleware=[AvengersMiddleware(llm)],
        checkpointer=InMemorySaver(),
    )
    thread = {"configurable": {"thread_id": "pinned"}}
    first = agent.invoke(ask(), thread, context={"alpha": 1.0})
    second = agent.invoke(ask(SECOND), thread, context={"alpha": 0.0})
    model = first["avengers_turn"]["model"]
    assert model != router.route(SECOND, 0.0).model
    opening = answers(second)[-2]
    assert opening.response_metadata["model_name"] == model
    assert opening.response_metadata["avengers"]["pinned"] == {
        "source": "conversation",
        "model": model,
    }
    stateless = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])
    stateless.invoke(ask(), context={"alpha": 1.0, "session_id": "user-7"})
    again = stateless.invoke(ask(SECOND), context={"alpha": 0.0, "session_id": "user-7"})
    assert again["avengers_turn"]["model"] == model


def test_streamed_agent_runs_are_priced_too(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    agent = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])
    chunks = list(agent.stream(ask(), stream_mode=["messages", "values"]))
    state = [data for mode, data in chunks if mode == "values"][-1]
    streamed = [data for mode, data in chunks if mode == "messages"]
    assert streamed, "LangGraph streamed the model's tokens"
    assert state["avengers_turn"]["unpriced_calls"] == 0
    assert state["avengers_turn"]["cost"] == pytest.approx(
        sum(m.response_metadata["cost"] for m in answers(state))
    )


def test_structured_output_needs_a_forced_tool_call(server: OfflineOpenRouter) -> None:
    no_choice = {m: {"tool_choice": False} for m in load_default_router().models_[:2]}
    llm = make_llm(server, profiles=no_choice)
    agent = create_agent(llm, response_format=Product, middleware=[AvengersMiddleware(llm)])
    result = agent.invoke(ask("What is 6 times 7?"))
    info = answers(result)[0].response_metadata["avengers"]
    assert info["required_capabilities"] == ["tool_calling", "tool_choice"]
    assert set(info["excluded"]) == set(no_choice)
    assert isinstance(result["structured_response"], Product)


def test_model_runs_carry_the_routed_model_and_decision(
    server: OfflineOpenRouter, router: Any
) -> None:
    llm = make_llm(server)
    agent = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])
    with collect_runs() as collected:
        agent.invoke(ask(), context={"alpha": 1.0})
    runs = [r for r in _all_runs(collected.traced_runs) if r.run_type == "llm"]
    strong = router.route(QUESTION, 1.0).model
    assert [r.extra["metadata"]["ls_model_name"] for r in runs] == [strong, strong]
    assert [r.extra["metadata"]["avengers_pinned"] for r in runs] == [None, "turn"]
    assert all(r.outputs["llm_output"]["avengers"]["actual_cost"] > 0 for r in runs)


@pytest.mark.parametrize("overbill", [1.02, 1.5])
def test_a_run_spends_at_most_its_cap_plus_its_last_calls_overshoot(
    server: OfflineOpenRouter, router: Any, overbill: float
) -> None:
    """The stated bound of ``max_run_cost`` when the provider bills above the estimate."""
    llm = make_llm(server)
    costs = first_call_costs(llm, router, QUESTION)
    server.faults.cost_overrides = {m: c * overbill for m, c in costs.items()}
    agent = create_agent(llm, tools=[multiply], middleware=[AvengersMiddleware(llm)])
    cheapest = min(costs.values())
    overshot = 0
    for step in range(40):
        cap = cheapest * (1 + step / 8)
        result = agent.invoke(ask(), context={"alpha": (step % 5) / 4, "max_run_cost": cap})
        spent, last_over = 0.0, 0.0
        for message in answers(result):
            info = message.response_metadata["avengers"]
            if info.get("stopped"):
                continue
            chosen = next(c for c in info["candidates"] if c["model"] == info["model"])
            expected = chosen["expected_call_cost"]
            assert expected <= cap - spent + 1e-15  # each call fit what the run had left
            billed = message.usage_metadata["total_cost"]  # type: ignore[index]
            spent += billed
            last_over = billed - expected
        assert result["avengers_run_cost"] == pytest.approx(spent, rel=1e-12)
        assert spent <= cap + max(last_over, 0.0) + 1e-15
        overshot += spent > cap
    assert overshot > 0  # the bound is reached: the cap alone is not kept
