"""Calls through every LangChain entry point: route events, usage costs, odd inputs.

Each routed call fires its ``avengers_route`` event on its own run, whatever the entry point
(``streaming=True``, interleaved streams, ``generate`` with several prompts); usage carries
the costs on ``invoke`` and on the last streamed chunk, and sums over a whole agent.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.embeddings import Embeddings
from langchain_core.messages import AIMessage, HumanMessage
from local_chat import Joke, magic_function, make_llm
from route_events import EventLog

from langchain_avengers import ClusterRouter, WordLlamaEmbeddings
from langchain_avengers import callbacks as avengers_callbacks
from langchain_avengers.routing.bundled import default_router_path, load_default_router
from langchain_avengers.testing import OfflineOpenRouter

QUERY = "Prove that there are infinitely many prime numbers."
OTHER = "What is the capital of Australia?"
ROUTER = load_default_router()


def pick(text: str, alpha: float = 0.5) -> str:
    return ROUTER.route(text, alpha).model


# ---------------------------------------------------------------------------- route events


def test_invoke_with_streaming_true_fires_the_route_event_on_its_run(
    server: OfflineOpenRouter,
) -> None:
    log = EventLog()
    message = make_llm(server, streaming=True).invoke(QUERY, config={"callbacks": [log]})
    assert len(log.starts) == 1
    assert [run_id for run_id, _ in log.events] == log.starts
    assert log.events[0][1]["model"] == message.response_metadata["model_name"]


def test_interleaved_streams_leave_no_stale_run_behind(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    first, second = EventLog(), EventLog()
    one = llm.stream(QUERY, config={"callbacks": [first]})
    two = llm.stream(OTHER, config={"callbacks": [second]})
    next(one)
    next(two)
    list(one)
    list(two)
    later = EventLog()
    make_llm(server, streaming=True).invoke(OTHER, config={"callbacks": [later]})
    for log in (first, second, later):
        assert len(log.starts) == 1
        assert [run_id for run_id, _ in log.events] == log.starts


def test_generate_with_several_prompts_routes_each_in_its_own_run(
    server: OfflineOpenRouter,
) -> None:
    log = EventLog()
    result = make_llm(server).generate(
        [[HumanMessage(QUERY)], [HumanMessage(OTHER)]], callbacks=[log]
    )
    models = [g[0].message.response_metadata["model_name"] for g in result.generations]
    assert models == [pick(QUERY), pick(OTHER)]
    assert len(log.starts) == 2
    assert [run_id for run_id, _ in log.events] == log.starts
    assert [data["model"] for _, data in log.events] == models
    assert [info.run_id for info in result.run or []] == log.starts


# ---------------------------------------------------------------------------- answers


def test_provider_model_id_is_kept_beside_the_routed_id(server: OfflineOpenRouter) -> None:
    model = pick(QUERY)
    server.faults.reported_models[model] = f"{model}-preview-0925"
    llm = make_llm(server)
    message = llm.invoke(QUERY)
    chunks = list(llm.stream(QUERY))
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    for answer in (message, full):
        assert answer.response_metadata["model_name"] == model
        assert answer.response_metadata["provider_model"] == f"{model}-preview-0925"


def test_empty_message_list_is_refused_before_any_request(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    with pytest.raises(ValueError, match="messages: empty list"):
        llm.invoke([])
    with pytest.raises(ValueError, match="messages: empty list"):
        list(llm.stream([]))
    assert server.requests == []


def test_per_call_options_reach_the_model_through_structured_output(
    server: OfflineOpenRouter,
) -> None:
    text = "Tell me a joke about cats."
    cheapest = pick(text, 0.0)
    assert cheapest != pick(text, 0.5)
    llm = make_llm(server, alpha=0.5)
    raw = llm.with_structured_output(Joke, include_raw=True).invoke(text, alpha=0.0)["raw"]
    assert raw.response_metadata["avengers"]["alpha"] == 0.0
    assert raw.response_metadata["model_name"] == cheapest
    log = EventLog()
    joke = llm.with_structured_output(Joke).invoke(text, config={"callbacks": [log]}, alpha=0.0)
    assert isinstance(joke, Joke)
    assert log.events[0][1]["alpha"] == 0.0


def test_bad_per_call_options_fail_inside_the_run_before_any_request(
    server: OfflineOpenRouter,
) -> None:
    log = EventLog()
    llm = make_llm(server)
    with pytest.raises(ValueError, match=r"alpha: expected a number in \[0, 1\].*'high'"):
        llm.invoke(QUERY, alpha="high", config={"callbacks": [log]})
    with pytest.raises(ValueError, match="nearest_clusters"):
        llm.invoke(QUERY, nearest_clusters=0)
    with pytest.raises(ValueError, match="not in the router's pool"):
        llm.invoke(QUERY, model="openai/gpt-5")
    assert len(log.starts) == 1, "the failed call is a traced run"
    assert server.requests == []


# ---------------------------------------------------------------------------- usage and cost


def test_costs_in_usage_of_answers_and_in_metadata_of_the_last_chunk(
    server: OfflineOpenRouter,
) -> None:
    llm = make_llm(server)
    message = llm.invoke(QUERY)
    usage = message.usage_metadata
    assert usage["total_cost"] == message.response_metadata["cost"] > 0
    assert usage["input_cost"] + usage["output_cost"] == pytest.approx(usage["total_cost"])
    chunks = list(llm.stream(QUERY))
    assert [c for c in chunks if c.usage_metadata] == [chunks[-1]], "usage on the last chunk"
    assert [c for c in chunks if "cost" in c.response_metadata] == [chunks[-1]]
    last = chunks[-1]
    assert last.usage_metadata["total_tokens"] == usage["total_tokens"]
    assert "total_cost" not in last.usage_metadata, "chunks keep integer usage (core #36015)"
    assert last.response_metadata["cost"] == pytest.approx(usage["total_cost"])
    assert last.response_metadata["avengers"]["input_cost"] == pytest.approx(usage["input_cost"])
    assert sum(chunks[1:], chunks[0]).usage_metadata == last.usage_metadata  # any merge works
    streamed_invoke = make_llm(server, streaming=True).invoke(QUERY)  # LangChain merges chunks
    assert streamed_invoke.usage_metadata == usage


async def test_astream_events_end_carries_the_costs(server: OfflineOpenRouter) -> None:
    events = [e async for e in make_llm(server).astream_events(QUERY, version="v2")]
    (end,) = [e for e in events if e["event"] == "on_chat_model_end"]
    assert end["data"]["output"].usage_metadata["total_cost"] > 0


def test_core_usage_callback_drops_float_costs(server: OfflineOpenRouter) -> None:
    """The limitation ours works around (langchain-ai/langchain#36015); update the README
    when this starts failing."""
    llm = make_llm(server)
    with get_usage_metadata_callback() as core:
        one = llm.invoke(QUERY)
        llm.invoke(QUERY)
    model = one.response_metadata["model_name"]
    assert core.usage_metadata[model]["total_tokens"] == one.usage_metadata["total_tokens"]


def test_usage_callback_sums_a_whole_agent_in_tokens_and_dollars(server: OfflineOpenRouter) -> None:
    from langchain.agents import create_agent

    agent = create_agent(model=make_llm(server), tools=[magic_function])
    question = {"messages": [HumanMessage("What is magic_function(3)? Use the tool.")]}
    with avengers_callbacks.get_usage_metadata_callback() as usage:
        first = agent.invoke(question)
        second = agent.invoke(question)
    answers = [m for s in (first, second) for m in s["messages"] if isinstance(m, AIMessage)]
    assert len(answers) == 4
    assert usage.total_cost == pytest.approx(sum(a.usage_metadata["total_cost"] for a in answers))
    assert usage.total_tokens == sum(a.usage_metadata["total_tokens"] for a in answers)
    for model, summed in usage.usage_metadata.items():
        mine = [a for a in answers if a.response_metadata["model_name"] == model]
        assert summed["output_cost"] == pytest.approx(
            sum(a.usage_metadata["output_cost"] for a in mine)
        )


async def test_usage_callback_sums_streams_and_invokes_alike(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    with avengers_callbacks.get_usage_metadata_callback() as usage:
        answer = llm.invoke(QUERY)
        list(llm.stream(QUERY))
        _ = [c async for c in llm.astream(QUERY)]
        await llm.ainvoke(QUERY)
    assert usage.total_cost == pytest.approx(4 * answer.usage_metadata["total_cost"])
    assert usage.total_tokens == 4 * answer.usage_metadata["total_tokens"]


# ---------------------------------------------------------------------------- async routing

OVERLAP_WAIT_S = 10.0
"""How long an embedding call waits for a second one to start: a serialised router never
starts one, so the wait runs out and the call reports no overlap."""


class OverlapEmbeddings(Embeddings):
    """WordLlama behind a rendezvous, like a remote embedding API that is slow to answer.

    Each call waits until two calls are in flight at once (or :data:`OVERLAP_WAIT_S` passes)
    and notes whether they were: a proof of concurrency no loaded machine can fake or break,
    unlike a bound on wall time.
    """

    identity = WordLlamaEmbeddings().identity

    def __init__(self) -> None:
        self.overlapped: list[bool] = []
        self._arrived = 0
        self._lock = threading.Lock()
        self._two_in_flight = threading.Event()

    def _arrive(self) -> None:
        with self._lock:
            self._arrived += 1
            if self._arrived >= 2:
                self._two_in_flight.set()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self._arrive()
        self.overlapped.append(self._two_in_flight.wait(OVERLAP_WAIT_S))
        return WordLlamaEmbeddings().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class AsyncOverlapEmbeddings(OverlapEmbeddings):
    """The same with its own async method, as remote API clients have."""

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        self._arrive()
        deadline = time.monotonic() + OVERLAP_WAIT_S
        while not self._two_in_flight.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)  # yields the loop: another ainvoke can reach its embed
        self.overlapped.append(self._two_in_flight.is_set())
        return WordLlamaEmbeddings().embed_documents(texts)


@pytest.mark.parametrize("embedder_class", [AsyncOverlapEmbeddings, OverlapEmbeddings])
async def test_concurrent_ainvokes_embed_concurrently(
    server: OfflineOpenRouter, embedder_class: type[OverlapEmbeddings]
) -> None:
    embedder = embedder_class()
    router = ClusterRouter.load(default_router_path(), embedder=embedder)
    llm = make_llm(server, router=router)
    questions = [f"Question {i}: what is {i} + {i}?" for i in range(6)]
    answers = await asyncio.gather(*(llm.ainvoke(q) for q in questions))
    assert [a.response_metadata["model_name"] for a in answers] == [pick(q) for q in questions]
    assert len(embedder.overlapped) == len(questions)
    assert all(embedder.overlapped), "an embedding call waited alone: routes were serialised"
