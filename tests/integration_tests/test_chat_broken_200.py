"""Broken HTTP 200 answers (an HTML page, a JSON error where a stream was asked for, a stream
of empty-choices events) are provider failures: retried, then served by the next-best model,
whether the call is invoked, streamed, async or ``invoke`` with ``streaming=True``.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessageChunk

from langchain_avengers import AvengersChatModel, load_default_router
from langchain_avengers.openrouter.errors import ProviderError
from langchain_avengers.testing import OfflineOpenRouter

SECRET = "sk-or-v1-test-secret-broken-0123456789"
QUERY = "Prove that there are infinitely many prime numbers."
ORDER = [c.model for c in load_default_router().route(QUERY, 0.5).candidates]
STREAM_KINDS = ["html", "html_as_json", "json_error", "empty_choices_event"]


def make_llm(server: OfflineOpenRouter, **kwargs: Any) -> AvengersChatModel:
    params: dict[str, Any] = {"base_url": server.base_url, "api_key": SECRET, "timeout": 5}
    return AvengersChatModel(**{**params, **kwargs})


def joined(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    return full


async def answers(llm: AvengersChatModel, mode: str) -> AIMessageChunk | Any:
    if mode == "stream":
        return joined(list(llm.stream(QUERY, alpha=0.5)))
    if mode == "astream":
        return joined([c async for c in llm.astream(QUERY, alpha=0.5)])
    if mode == "invoke_streaming":
        return llm.model_copy(update={"streaming": True}).invoke(QUERY, alpha=0.5)
    if mode == "ainvoke":
        return await llm.ainvoke(QUERY, alpha=0.5)
    return llm.invoke(QUERY, alpha=0.5)


@pytest.mark.parametrize("kind", STREAM_KINDS)
@pytest.mark.parametrize("mode", ["stream", "astream", "invoke_streaming", "invoke", "ainvoke"])
async def test_broken_http_200_is_retried_then_falls_back(
    server: OfflineOpenRouter, kind: str, mode: str
) -> None:
    server.faults.http200_bodies[ORDER[0]] = kind
    message = await answers(make_llm(server, max_retries=1), mode)
    assert message.response_metadata["model_name"] == ORDER[1]
    assert message.content.endswith(f"deterministic reply from {ORDER[1]}.")
    assert server.models_called() == [ORDER[0], ORDER[0], ORDER[1]]
    info = message.response_metadata["avengers"]
    assert [f["model"] for f in info["retries"]] == [ORDER[0]]
    assert [(f["model"], f["error"]) for f in info["fallbacks"]] == [(ORDER[0], "ProviderError")]


@pytest.mark.parametrize("mode", ["stream", "invoke"])
def test_broken_http_200_on_every_model_fails_the_call_clearly(
    server: OfflineOpenRouter, mode: str
) -> None:
    for model in ORDER:
        server.faults.http200_bodies[model] = "html"
    llm = make_llm(server, max_retries=0)

    def call() -> object:
        return list(llm.stream(QUERY, alpha=0.5)) if mode == "stream" else llm.invoke(QUERY)

    with pytest.raises(ProviderError, match="HTTP 200") as raised:
        call()
    assert isinstance(raised.value, openai.APIError)
    assert len(server.models_called()) == 3  # the first model and two fallbacks


# ---------------------------------------------------------------------------- keys


@pytest.mark.parametrize("mode", ["stream", "invoke"])
def test_a_key_echoed_in_an_error_body_is_redacted(server: OfflineOpenRouter, mode: str) -> None:
    server.faults.echo_key = True
    server.faults.fail_models = {ORDER[0]: 503, ORDER[1]: 400}
    llm = make_llm(server, max_retries=0)

    def call() -> object:
        return list(llm.stream(QUERY, alpha=0.5)) if mode == "stream" else llm.invoke(QUERY)

    with pytest.raises(openai.BadRequestError) as raised:
        call()
    shown = "\n".join([str(raised.value), repr(raised.value), *raised.value.__notes__])
    assert "<api key>" in str(raised.value)
    assert SECRET not in shown
    assert SECRET not in repr(raised.value.body)
    assert SECRET not in raised.value.message


# ---------------------------------------------------------------------------- unsendable input


def test_a_lone_surrogate_is_a_clear_error_naming_the_message(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    messages = [("human", "hello"), ("ai", "hi"), ("human", "cut emoji \ud83d here")]
    with pytest.raises(ValueError, match=r"messages\[2\] \(human\) content: character 10 is a"):
        llm.invoke(messages)
    with pytest.raises(ValueError, match="lone surrogate"):
        list(llm.stream(messages))
    assert server.models_called() == []


def deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    inner = schema
    for _ in range(levels):
        inner["properties"]["child"] = {"type": "object", "properties": {}}
        inner = inner["properties"]["child"]
    return schema


def test_a_tool_schema_nested_too_deep_is_a_clear_error_naming_the_tool(
    server: OfflineOpenRouter,
) -> None:
    tool = {
        "type": "function",
        "function": {"name": "deep_tool", "description": "d", "parameters": deep_schema(600)},
    }
    llm = make_llm(server).bind_tools([tool])
    with pytest.raises(ValueError, match="tool 'deep_tool': its schema is nested more than 100"):
        llm.invoke("Use the tool.")
    assert server.models_called() == []
    shallow = {**tool, "function": {**tool["function"], "parameters": deep_schema(5)}}
    assert make_llm(server).bind_tools([shallow]).invoke("Use the tool.") is not None
