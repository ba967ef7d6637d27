"""What LangSmith receives from a routed call, through the real ``langsmith`` client.

``langsmith.Client`` and LangChain's ``LangChainTracer`` post to a local stand-in
(``tests/langsmith_server.py``) that decodes what they send (zstd-compressed multipart, as to
a current LangSmith). Each test reads the posted runs back: one LLM run per model call, opened
with the routed model as ``ls_model_name``, the decision in its metadata, tokens and costs in
its usage, and no API key anywhere in the posted bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import langsmith
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tracers import LangChainTracer
from langsmith_server import LangSmithStandIn, serve
from local_chat import SECRET, magic_function, make_llm

from langchain_avengers import load_default_router
from langchain_avengers.testing import OfflineOpenRouter

LANGSMITH_KEY = "lsv2_pt_distinctive-langsmith-key-93a7f2"
QUESTION = "Prove that there are infinitely many prime numbers."
DECISION_KEYS = {
    "avengers_model",
    "avengers_alpha",
    "avengers_routed",
    "avengers_nearest_clusters",
    "avengers_candidates",
    "avengers_excluded",
    "avengers_required_capabilities",
}
COST_KEYS = ("input_cost", "output_cost", "total_cost")


@pytest.fixture
def stand_in() -> Iterator[LangSmithStandIn]:
    with serve() as received:
        yield received


@pytest.fixture
def tracer(stand_in: LangSmithStandIn) -> Iterator[LangChainTracer]:
    client = langsmith.Client(api_url=stand_in.base_url, api_key=LANGSMITH_KEY)
    yield LangChainTracer(client=client, project_name="avengers-tests")
    client.cleanup()


def posted_runs(stand_in: LangSmithStandIn, tracer: LangChainTracer) -> list[dict[str, Any]]:
    """Every run the client posted, once its queue is flushed."""
    tracer.wait_for_futures()
    tracer.client.flush()
    return list(stand_in.runs().values())


def llm_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [run for run in runs if run.get("run_type") == "llm"]


def posted_message(run: dict[str, Any]) -> dict[str, Any]:
    """The answer as the run's outputs hold it (LangChain's serialised AIMessage kwargs)."""
    generations = run["outputs"]["generations"]
    assert len(generations) == 1
    assert len(generations[0]) == 1
    return generations[0][0]["message"]["kwargs"]


def usage_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs whose metadata carries token usage (LangSmith adds it up over a trace's runs)."""
    return [
        run for run in runs if "usage_metadata" in ((run.get("extra") or {}).get("metadata") or {})
    ]


def assert_routed_run(run: dict[str, Any], answer: AIMessage) -> None:
    """The run was opened with the routed model and the decision; usage and cost once."""
    metadata = run["extra"]["metadata"]
    model = answer.response_metadata["model_name"]
    assert metadata["ls_model_name"] == model
    assert metadata["ls_provider"] == "openrouter"
    assert set(metadata) >= DECISION_KEYS
    assert metadata["avengers_model"] == model
    assert metadata["avengers_alpha"] == answer.response_metadata["avengers"]["alpha"]
    assert metadata["avengers_candidates"][0]["model"] == model
    assert {"model", "score"} <= set(metadata["avengers_candidates"][0])
    posted = posted_message(run)
    usage = posted["usage_metadata"]
    assert usage["total_tokens"] == answer.usage_metadata["total_tokens"] > 0
    cost = answer.response_metadata["avengers"]
    for key, reported in zip(COST_KEYS, ("input_cost", "output_cost", "actual_cost"), strict=True):
        assert usage[key] == pytest.approx(cost[reported])
    assert usage["total_cost"] == pytest.approx(usage["input_cost"] + usage["output_cost"])
    assert metadata["usage_metadata"] == usage  # the tracer's summary of the same answer
    assert posted["response_metadata"]["cost"] == pytest.approx(usage["total_cost"])


def assert_no_key_posted(stand_in: LangSmithStandIn) -> None:
    posted = stand_in.posted_bytes()
    assert posted, "nothing was posted"
    assert SECRET.encode() not in posted
    assert LANGSMITH_KEY.encode() not in posted
    headers = str([r.headers for r in stand_in.requests])
    assert SECRET not in headers


def test_invoke_posts_one_llm_run_with_model_decision_and_cost(
    server: OfflineOpenRouter, stand_in: LangSmithStandIn, tracer: LangChainTracer
) -> None:
    answer = make_llm(server).invoke(QUESTION, alpha=0.7, config={"callbacks": [tracer]})
    runs = posted_runs(stand_in, tracer)
    assert len(runs) == 1
    (run,) = llm_runs(runs)
    assert_routed_run(run, answer)
    assert run["extra"]["metadata"]["avengers_alpha"] == 0.7
    assert_no_key_posted(stand_in)
    # sent as to a current LangSmith: compressed multipart
    assert {(r.path, r.headers.get("content-encoding")) for r in stand_in.requests} == {
        ("/runs/multipart", "zstd")
    }


@pytest.mark.parametrize("mode", ["stream", "astream", "ainvoke"])
async def test_streams_and_async_post_the_same(
    server: OfflineOpenRouter, stand_in: LangSmithStandIn, tracer: LangChainTracer, mode: str
) -> None:
    llm = make_llm(server)
    config: Any = {"callbacks": [tracer]}
    if mode == "stream":
        chunks = list(llm.stream(QUESTION, config=config))
    elif mode == "astream":
        chunks = [c async for c in llm.astream(QUESTION, config=config)]
    if mode == "ainvoke":
        answer = await llm.ainvoke(QUESTION, config=config)
    else:
        full = chunks[0]
        for chunk in chunks[1:]:
            full += chunk
        answer = AIMessage(
            **full.model_dump(exclude={"type", "tool_call_chunks", "chunk_position"})
        )
    (run,) = llm_runs(posted_runs(stand_in, tracer))
    assert_routed_run(run, answer)
    assert_no_key_posted(stand_in)


def test_chain_counts_tokens_and_cost_once(
    server: OfflineOpenRouter, stand_in: LangSmithStandIn, tracer: LangChainTracer
) -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    chain = prompt | make_llm(server) | StrOutputParser()
    chain.invoke({"question": QUESTION}, config={"callbacks": [tracer]})
    runs = posted_runs(stand_in, tracer)
    assert len(runs) == 4  # the chain, the prompt, the model, the parser
    (run,) = llm_runs(runs)
    assert usage_runs(runs) == [run]
    assert run["extra"]["metadata"]["ls_model_name"] == run["extra"]["metadata"]["avengers_model"]
    assert_no_key_posted(stand_in)


def test_agent_posts_one_llm_run_per_model_call(
    server: OfflineOpenRouter, stand_in: LangSmithStandIn, tracer: LangChainTracer
) -> None:
    from langchain.agents import create_agent

    agent = create_agent(model=make_llm(server), tools=[magic_function])
    state = agent.invoke(
        {"messages": [HumanMessage("What is magic_function(3)? Use the tool.")]},
        config={"callbacks": [tracer]},
    )
    answers = [m for m in state["messages"] if isinstance(m, AIMessage)]
    assert len(answers) == 2
    runs = posted_runs(stand_in, tracer)
    model_runs = llm_runs(runs)
    assert len(model_runs) == len(answers)
    assert usage_runs(runs) == model_runs
    by_id = {posted_message(run)["id"]: run for run in model_runs}
    for answer in answers:
        assert_routed_run(by_id[answer.id], answer)
    assert_no_key_posted(stand_in)


def test_fallback_is_recorded_on_the_same_run(
    server: OfflineOpenRouter, stand_in: LangSmithStandIn, tracer: LangChainTracer
) -> None:
    order = [c.model for c in load_default_router().route(QUESTION, 0.5).candidates]
    server.faults.fail_models[order[0]] = 503
    answer = make_llm(server).invoke(QUESTION, config={"callbacks": [tracer]})
    assert answer.response_metadata["model_name"] == order[1]
    (run,) = llm_runs(posted_runs(stand_in, tracer))
    metadata = run["extra"]["metadata"]
    assert metadata["avengers_model"] == metadata["ls_model_name"] == order[0]  # fixed at start
    posted = posted_message(run)
    assert posted["response_metadata"]["model_name"] == order[1]
    assert posted["response_metadata"]["avengers"]["fallbacks"][0]["model"] == order[0]
    assert posted["usage_metadata"]["total_cost"] == pytest.approx(
        answer.usage_metadata["total_cost"]
    )
    assert_no_key_posted(stand_in)
