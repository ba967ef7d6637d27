"""AvengersChatModel against the local OpenRouter-compatible server (real HTTP on loopback)."""

from __future__ import annotations

import json
import logging
from typing import Any

import openai
import pytest
from langchain_core.load import dumpd
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import ConfigurableField
from langchain_core.tracers.context import collect_runs
from local_chat import SECRET, Joke, closed_port, magic_function, make_llm
from route_events import AsyncEventLog, EventLog

from langchain_avengers import AvengersChatModel
from langchain_avengers.chat_models.base import NoCapableModelError
from langchain_avengers.testing import OfflineOpenRouter

QUERY = "Prove that there are infinitely many prime numbers."


def expected_order(router: Any, text: str, alpha: float, models: list[str] | None = None) -> list:
    return [c.model for c in router.route(text, alpha, allowed_models=models).candidates]


# ---------------------------------------------------------------------------- routing


def test_each_call_goes_to_the_model_the_router_picks(
    server: OfflineOpenRouter, router: Any
) -> None:
    llm = make_llm(server)
    picks = {}
    for alpha in (0.0, 0.5, 1.0):
        message = llm.invoke(QUERY, alpha=alpha)
        picks[alpha] = message.response_metadata["model_name"]
        assert picks[alpha] == expected_order(router, QUERY, alpha)[0]
    assert server.models_called() == [picks[0.0], picks[0.5], picks[1.0]]
    assert len(set(picks.values())) > 1, "alpha should change the choice for this query"


def test_bind_alpha_and_configurable_alpha(server: OfflineOpenRouter, router: Any) -> None:
    llm = make_llm(server, alpha=0.5)
    cheap = llm.bind(alpha=0.0).invoke(QUERY)
    assert cheap.response_metadata["avengers"]["alpha"] == 0.0
    assert cheap.response_metadata["model_name"] == expected_order(router, QUERY, 0.0)[0]
    configurable = llm.configurable_fields(alpha=ConfigurableField(id="alpha"))
    strong = configurable.invoke(QUERY, config={"configurable": {"alpha": 1.0}})
    assert strong.response_metadata["model_name"] == expected_order(router, QUERY, 1.0)[0]
    bound_wins = configurable.bind(alpha=0.0).invoke(QUERY, config={"configurable": {"alpha": 1}})
    assert bound_wins.response_metadata["avengers"]["alpha"] == 0.0


def test_bound_budget_survives_tools_structure_and_agents(
    server: OfflineOpenRouter, router: Any
) -> None:
    """``.bind(alpha=...)`` is a per-chain budget: wrapping the binding must not drop it."""
    llm = make_llm(server, alpha=0.5)
    text = "What is magic_function(3)? Use the tool."
    cheapest = expected_order(router, text, 0.0)[0]
    assert cheapest != expected_order(router, text, 0.5)[0]
    calls = [
        llm.bind(alpha=0.0).bind_tools([magic_function]).invoke(text),
        llm.bind(alpha=0.0).with_structured_output(Joke, include_raw=True).invoke(text)["raw"],
        llm.with_structured_output(Joke, include_raw=True, alpha=0.0).invoke(text)["raw"],
        llm.bind_tools([magic_function], alpha=0.0).invoke(text),
    ]
    for message in calls:
        assert message.response_metadata["avengers"]["alpha"] == 0.0
        assert message.response_metadata["model_name"] == cheapest
    from langchain.agents import create_agent

    agent = create_agent(model=llm.bind(alpha=0.0), tools=[magic_function])
    state = agent.invoke({"messages": [HumanMessage(text)]})
    answers = [m for m in state["messages"] if isinstance(m, AIMessage)]
    assert len(answers) == 2
    assert {m.response_metadata["avengers"]["alpha"] for m in answers} == {0.0}
    assert llm.alpha == 0.5, "binding must not change the original model"
    with pytest.raises(ValueError, match="alpha must be in"):
        llm.bind(alpha=1.5)
    with pytest.raises(ValueError, match="openai/gpt-5"):
        llm.bind(models=["openai/gpt-5"])


def test_per_call_models_restrict_the_pool(server: OfflineOpenRouter, router: Any) -> None:
    pool = ["google/gemini-2.5-flash", "google/gemini-2.5-pro"]
    message = make_llm(server).invoke(QUERY, alpha=0.0, models=pool)
    assert message.response_metadata["model_name"] == expected_order(router, QUERY, 0.0, pool)[0]
    assert {c["model"] for c in message.response_metadata["avengers"]["candidates"]} == set(pool)


def test_unknown_model_is_an_error_before_any_request(server: OfflineOpenRouter) -> None:
    with pytest.raises(ValueError, match="openai/gpt-5"):
        make_llm(server).invoke(QUERY, models=["openai/gpt-5"])
    assert server.requests == []


def test_pinned_model_skips_routing(server: OfflineOpenRouter) -> None:
    message = make_llm(server).invoke(QUERY, model="google/gemini-2.5-pro", alpha=0.0)
    assert message.response_metadata["model_name"] == "google/gemini-2.5-pro"
    assert message.response_metadata["avengers"]["routed"] is False
    assert server.models_called() == ["google/gemini-2.5-pro"]


def test_routing_reads_the_latest_human_message(server: OfflineOpenRouter, router: Any) -> None:
    """A tool loop keeps its model: tool messages after the human turn do not move it."""
    llm = make_llm(server).bind_tools([magic_function])
    first = llm.invoke([HumanMessage("What is magic_function(3)? Use the tool.")])
    call = first.tool_calls[0]
    history = [
        HumanMessage("What is magic_function(3)? Use the tool."),
        first,
        ToolMessage("5", tool_call_id=call["id"]),
    ]
    second = llm.invoke(history)
    assert second.response_metadata["model_name"] == first.response_metadata["model_name"]


# ---------------------------------------------------------------------------- capabilities


def test_tool_calls_never_reach_a_model_without_tool_support(
    server: OfflineOpenRouter, router: Any
) -> None:
    text = "What is magic_function(3)? Use the tool."
    favourite = expected_order(router, text, 0.5)[0]
    llm = make_llm(server, profiles={favourite: {"tool_calling": False}})
    for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
        message = llm.bind_tools([magic_function]).invoke(text, alpha=alpha)
        assert message.tool_calls[0]["name"] == "magic_function"
        assert favourite in message.response_metadata["avengers"]["excluded"]
    assert favourite not in server.models_called()
    plain = llm.invoke(text, alpha=0.5)
    assert plain.response_metadata["model_name"] == favourite


def test_no_capable_model_fails_before_any_request(server: OfflineOpenRouter, router: Any) -> None:
    no_tools = {m: {"tool_calling": False} for m in router.models_}
    llm = make_llm(server, profiles=no_tools)
    with pytest.raises(NoCapableModelError, match="tool_calling") as info:
        llm.bind_tools([magic_function]).invoke("use the tool")
    for model in router.models_:
        assert model in str(info.value)
    no_structure = {m: {"structured_output": False} for m in router.models_}
    with pytest.raises(NoCapableModelError, match="structured_output"):
        make_llm(server, profiles=no_structure).with_structured_output(Joke).invoke("a joke")
    assert server.requests == []


def test_too_long_input_excludes_a_model(server: OfflineOpenRouter, router: Any) -> None:
    favourite = expected_order(router, QUERY, 0.5)[0]
    llm = make_llm(server, profiles={favourite: {"max_input_tokens": 8}})
    message = llm.invoke(QUERY, alpha=0.5)
    reason = message.response_metadata["avengers"]["excluded"][favourite]
    assert "max_input_tokens=8" in reason
    assert message.response_metadata["model_name"] != favourite


def test_structured_output_methods(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    for method in ("function_calling", "json_schema"):
        joke = llm.with_structured_output(Joke, method=method).invoke("Tell me a joke about cats")
        assert isinstance(joke, Joke)
    raw = llm.with_structured_output(Joke, include_raw=True).invoke("a joke about dogs")
    assert isinstance(raw["raw"], AIMessage)
    assert raw["raw"].response_metadata["avengers"]["required_capabilities"] == [
        "structured_output",
        "tool_calling",
        "tool_choice",
    ]


# ---------------------------------------------------------------------------- metadata & cost


def test_metadata_records_decision_and_openrouter_cost(server: OfflineOpenRouter) -> None:
    message = make_llm(server).invoke(QUERY, alpha=0.7)
    meta = message.response_metadata
    info = meta["avengers"]
    assert meta["model_name"] == info["model"]
    assert info["alpha"] == 0.7
    assert info["nearest_clusters"] == 4
    assert info["candidates"][0]["model"] == info["model"]
    assert len(info["candidates"]) == 4
    assert len(info["clusters"]) == 4 * 3  # nearest_clusters in each of the 3 k-means fits
    assert info["cost_source"] == "openrouter"
    assert info["actual_cost"] == pytest.approx(meta["token_usage"]["cost"])
    assert info["expected_cost"] > 0
    assert info["fallbacks"] == []
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == meta["token_usage"]["total_tokens"]


def test_streaming_puts_decision_first_and_cost_last(server: OfflineOpenRouter) -> None:
    chunks = list(make_llm(server).stream(QUERY, alpha=0.7))
    assert chunks[0].response_metadata["avengers"]["model"]
    assert "actual_cost" not in chunks[0].response_metadata["avengers"]
    with_cost = [c for c in chunks if "actual_cost" in c.response_metadata.get("avengers", {})]
    assert with_cost == [chunks[-1]], "the cost is on the very last chunk"
    assert chunks[-1].chunk_position == "last"
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    info = full.response_metadata["avengers"]
    assert full.response_metadata["model_name"] == info["model"]
    assert info["cost_source"] == "openrouter"
    assert info["actual_cost"] > 0
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_tokens"] > 0
    assert full.content


def test_list_price_cost_when_openrouter_gives_none(server: OfflineOpenRouter) -> None:
    message = make_llm(server).invoke(QUERY, alpha=0.7)
    assert message.response_metadata["avengers"]["cost_source"] == "openrouter"
    # The same answer priced from the catalog, as the model does when usage.cost is absent.
    from langchain_avengers.catalog.base import load_catalog
    from langchain_avengers.chat_models.costs import answer_cost

    model = message.response_metadata["model_name"]
    cost = answer_cost(message.usage_metadata, None, load_catalog()[model])
    assert cost.source == "list_prices"
    assert cost.total == pytest.approx(message.response_metadata["avengers"]["actual_cost"])


# ---------------------------------------------------------------------------- fallbacks


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_retryable_failure_falls_back_to_next_best(
    server: OfflineOpenRouter, router: Any, status: int
) -> None:
    order = expected_order(router, QUERY, 0.5)
    server.faults.fail_models[order[0]] = status
    message = make_llm(server).invoke(QUERY, alpha=0.5)
    assert message.response_metadata["model_name"] == order[1]
    fallbacks = message.response_metadata["avengers"]["fallbacks"]
    assert [(f["model"], f["status"]) for f in fallbacks] == [(order[0], status)]
    assert server.models_called() == order[:2]


def test_no_tool_endpoint_404_falls_back(server: OfflineOpenRouter, router: Any) -> None:
    text = "What is magic_function(3)? Use the tool."
    order = expected_order(router, text, 0.5)
    server.faults.no_tool_models.add(order[0])
    message = make_llm(server).bind_tools([magic_function]).invoke(text, alpha=0.5)
    assert message.response_metadata["model_name"] == order[1]
    assert message.response_metadata["avengers"]["fallbacks"][0]["status"] == 404


@pytest.mark.parametrize("status", [400, 401, 402, 403])
def test_non_retryable_failure_raises_at_once(
    server: OfflineOpenRouter, router: Any, status: int
) -> None:
    order = expected_order(router, QUERY, 0.5)
    server.faults.fail_models[order[0]] = status
    with pytest.raises(openai.APIStatusError) as info:
        make_llm(server).invoke(QUERY, alpha=0.5)
    assert info.value.status_code == status
    assert server.models_called() == [order[0]]


def test_fallbacks_are_bounded(server: OfflineOpenRouter, router: Any) -> None:
    for model in router.models_:
        server.faults.fail_models[model] = 503
    with pytest.raises(openai.InternalServerError) as info:
        make_llm(server, max_fallbacks=2).invoke(QUERY)
    assert len(server.requests) == 3
    if hasattr(info.value, "__notes__"):  # Python 3.11+: the error lists the models tried
        tried = server.models_called()
        assert all(model in info.value.__notes__[0] for model in tried[:2])
    server.reset()
    for model in router.models_:
        server.faults.fail_models[model] = 503
    with pytest.raises(openai.InternalServerError):
        make_llm(server, max_fallbacks=0).invoke(QUERY)
    assert len(server.requests) == 1


def test_timeouts_and_connection_errors_fall_back_then_raise(server: OfflineOpenRouter) -> None:
    server.faults.delay_s = 1.0
    with pytest.raises(openai.APITimeoutError):
        make_llm(server, timeout=0.2, max_fallbacks=2).invoke(QUERY)
    assert len(server.models_called()) == 3, "three models tried, each timing out"
    dead = AvengersChatModel(
        base_url="http://127.0.0.1:9/api/v1", api_key=SECRET, max_retries=0, max_fallbacks=1
    )
    log = EventLog()
    with pytest.raises(openai.APIConnectionError):
        dead.invoke(QUERY, config={"callbacks": [log]})
    tried = [data["model"] for _, data in log.events]
    assert len(tried) == 2
    assert len(set(tried)) == 2, "the fallback is a different model"
    assert log.events[1][1]["fallbacks"][0]["error"].endswith("ConnectionError")


@pytest.mark.parametrize("max_fallbacks", [0, 1])
async def test_a_connection_error_names_the_url_it_tried_never_the_key(max_fallbacks: int) -> None:
    """The SDK says only "Connection error.", leaving a wrong base_url to guess."""
    base_url = f"http://127.0.0.1:{closed_port()}/api/v1"
    dead = AvengersChatModel(
        base_url=base_url, api_key=SECRET, max_retries=0, max_fallbacks=max_fallbacks
    )
    attempts = {
        "invoke": lambda: dead.invoke(QUERY),
        "stream": lambda: list(dead.stream(QUERY)),
    }
    for call in attempts.values():
        with pytest.raises(openai.APIConnectionError) as info:
            call()
        assert (
            str(info.value) == f"Connection error: no answer from POST {base_url}/chat/completions"
        )
        assert SECRET not in str(info.value) + "".join(getattr(info.value, "__notes__", []))
    with pytest.raises(openai.APIConnectionError, match=f"no answer from POST {base_url}/"):
        await dead.ainvoke(QUERY)


def test_stream_falls_back_before_the_first_chunk(server: OfflineOpenRouter, router: Any) -> None:
    order = expected_order(router, QUERY, 0.5)
    server.faults.fail_models[order[0]] = 429
    chunks = list(make_llm(server).stream(QUERY, alpha=0.5))
    info = chunks[0].response_metadata["avengers"]
    assert info["model"] == order[1]
    assert info["fallbacks"][0]["model"] == order[0]


def test_stream_failure_after_first_chunk_raises_without_splicing(
    server: OfflineOpenRouter, router: Any
) -> None:
    order = expected_order(router, QUERY, 0.5)
    server.faults.stream_fail_after_first_chunk.add(order[0])
    received = []
    with pytest.raises(openai.APIError):  # noqa: PT012 - the failure comes mid-iteration
        for chunk in make_llm(server).stream(QUERY, alpha=0.5):
            received.append(chunk)
    assert server.models_called() == [order[0]]
    assert all(
        c.response_metadata.get("avengers", {}).get("model", order[0]) == order[0] for c in received
    )


async def test_async_fallback(server: OfflineOpenRouter, router: Any) -> None:
    order = expected_order(router, QUERY, 0.5)
    server.faults.fail_models[order[0]] = 500
    message = await make_llm(server).ainvoke(QUERY, alpha=0.5)
    assert message.response_metadata["model_name"] == order[1]
    chunks = [c async for c in make_llm(server).astream(QUERY, alpha=0.5)]
    assert chunks[0].response_metadata["avengers"]["model"] == order[1]


# ---------------------------------------------------------------------------- callbacks & tracing


def test_route_event_on_the_models_own_run_invoke_and_stream(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    for call in (
        lambda cb: llm.invoke(QUERY, config={"callbacks": [cb]}),
        lambda cb: list(llm.stream(QUERY, config={"callbacks": [cb]})),
    ):
        log = EventLog()
        call(log)
        assert len(log.starts) == 1
        assert [run_id for run_id, _ in log.events] == log.starts
        assert log.events[0][1]["model"] in llm.pool


async def test_route_event_on_the_models_own_run_async(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    for mode in ("ainvoke", "astream"):
        log = AsyncEventLog()
        if mode == "ainvoke":
            await llm.ainvoke(QUERY, config={"callbacks": [log]})
        else:
            _ = [c async for c in llm.astream(QUERY, config={"callbacks": [log]})]
        assert len(log.starts) == 1, mode
        assert [run_id for run_id, _ in log.events] == log.starts, mode


def test_trace_shows_model_and_cost_once(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    with collect_runs() as collected:
        message = llm.invoke(QUERY)
    runs = collected.traced_runs
    assert len(runs) == 1, "one LLM run: tokens are not counted twice"
    run = runs[0]
    assert run.child_runs == []
    generation = run.outputs["generations"][0][0]
    info = generation["message"]["kwargs"]["response_metadata"]["avengers"]
    assert info["model"] == message.response_metadata["model_name"]
    assert info["actual_cost"] == message.response_metadata["avengers"]["actual_cost"]
    assert run.extra["metadata"]["ls_provider"] == "openrouter"
    assert run.extra["metadata"]["ls_model_name"] == message.response_metadata["model_name"]
    assert run.extra["metadata"]["avengers_model"] == message.response_metadata["model_name"]
    assert [e["name"] for e in run.events].count("start") == 1


# ---------------------------------------------------------------------------- secrets & scale


def test_api_key_never_leaks(server: OfflineOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    llm = make_llm(server)
    log = EventLog()
    message = llm.invoke(QUERY, config={"callbacks": [log]})
    server.faults.fail_models[message.response_metadata["model_name"]] = 429
    fallback = llm.invoke(QUERY)
    texts = [
        repr(llm),
        str(llm),
        json.dumps(dumpd(llm), default=str),
        json.dumps(llm.model_dump(), default=str),
        json.dumps(message.response_metadata, default=str),
        json.dumps(fallback.response_metadata, default=str),
        json.dumps([data for _, data in log.events], default=str),
        caplog.text,
    ]
    for text in texts:
        assert SECRET not in text


async def test_abatch_of_200_with_max_concurrency(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    questions = [f"Question {i}: what is {i} + {i}?" for i in range(200)]
    answers = await llm.abatch(questions, config={"max_concurrency": 8})
    assert len(answers) == 200
    assert all(a.response_metadata["avengers"]["actual_cost"] > 0 for a in answers)
    assert len(server.requests) == 200


def test_token_counts_are_offline_estimates(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    assert llm.get_num_tokens("hello world") == 3  # 11 bytes / 4, rounded up
    messages = [HumanMessage("hello world")]
    assert llm.get_num_tokens_from_messages(messages) == 3 + 4
    with_tool = llm.get_num_tokens_from_messages(messages, tools=[magic_function])
    assert with_tool > 7
