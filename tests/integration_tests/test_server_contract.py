"""The local OpenRouter-compatible server against real clients.

LangChain's standard chat-model suite runs ``ChatOpenAI`` against the server, so
the package's own tests can trust it as a stand-in for OpenRouter; the direct
tests below pin the error, usage and streaming behaviour the router relies on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx2
import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_avengers.openrouter.errors import classify
from langchain_avengers.testing import OfflineOpenRouter
from langchain_avengers.testing._faults import NO_TOOL_ENDPOINTS
from langchain_avengers.testing._models import MODELS

MODEL = "google/gemini-2.5-flash"


@pytest.mark.vcr_on_request
class TestStandardSuite(ChatModelIntegrationTests):
    """Every standard integration test, live against the server (or its cassettes)."""

    base_url: ClassVar[str] = ""
    vcr_active: ClassVar[bool] = False

    @pytest.fixture(autouse=True)
    def _point_at_server(self, openrouter_base_url: str, vcr_requested: bool) -> None:
        # Autouse fixtures run before ``model`` is built from ``chat_model_params``.
        type(self).base_url = openrouter_base_url
        type(self).vcr_active = vcr_requested

    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "base_url": self.base_url,
            "api_key": "test-key",
            "stream_usage": True,
        }

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "google/gemini-2.5-pro"

    @property
    def enable_vcr_tests(self) -> bool:
        # test_stream_time needs a cassette; it only makes sense when recording/replaying.
        return self.vcr_active


class TestStandardSuiteFunctionCalling(TestStandardSuite):
    """The suite again with structured output through a forced tool call."""

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        return {"method": "function_calling"}


# --------------------------------------------------------------------------- direct tests


@pytest.fixture
def client(server: OfflineOpenRouter) -> Iterator[openai.OpenAI]:
    """An OpenAI SDK client for the server, without retries so failures are immediate."""
    with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as sdk:
        yield sdk


def chat(server: OfflineOpenRouter, **kwargs: Any) -> ChatOpenAI:
    """A ChatOpenAI pointed at the server; ``max_retries=0`` unless overridden."""
    params: dict[str, Any] = {
        "model": MODEL,
        "base_url": server.base_url,
        "api_key": "test-key",
        "max_retries": 0,
        "stream_usage": True,
    }
    return ChatOpenAI(**{**params, **kwargs})


def post(server: OfflineOpenRouter, body: dict[str, Any], **headers: str) -> httpx2.Response:
    """A raw POST to /chat/completions (with a key unless headers say otherwise)."""
    sent = {"Authorization": "Bearer test-key", **headers}
    return httpx2.post(f"{server.base_url}/chat/completions", json=body, headers=sent)


HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}]}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic x"}])
def test_missing_or_empty_key_is_401(server: OfflineOpenRouter, headers: dict[str, str]) -> None:
    sent = {"Content-Type": "application/json", **headers}
    response = httpx2.post(f"{server.base_url}/chat/completions", json=HELLO, headers=sent)
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "No auth credentials found", "code": 401}}


def test_empty_key_never_leaves_the_sdk(server: OfflineOpenRouter) -> None:
    """openai 3.x refuses an empty key client-side, so the server never sees it."""
    with pytest.raises(openai.OpenAIError, match="Missing credentials"):
        openai.OpenAI(base_url=server.base_url, api_key="")
    assert server.requests == []


def test_unknown_model_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="acme/nope", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.body == {"message": "acme/nope is not a valid model ID", "code": 400}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (502, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_injected_failure(
    server: OfflineOpenRouter,
    client: openai.OpenAI,
    status: int,
    error: type[openai.APIStatusError],
) -> None:
    server.faults.fail_models[MODEL] = status
    with pytest.raises(error) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == status
    assert (info.value.response.headers.get("retry-after") == "0") == (status == 429)
    # Other models are unaffected.
    other = client.chat.completions.create(
        model="google/gemini-2.5-pro", messages=[{"role": "user", "content": "hi"}]
    )
    assert other.choices[0].message.content
    assert server.models_called() == [MODEL, "google/gemini-2.5-pro"]


@pytest.mark.parametrize(("status", "attempts"), [(429, 2), (503, 2), (400, 1)])
def test_openai_retries_rate_limits_and_server_errors(
    server: OfflineOpenRouter, status: int, attempts: int
) -> None:
    """openai retries 408/409/429/5xx (``retry-after: 0`` is ignored: backoff still
    applies); 4xx otherwise fails at once."""
    server.faults.fail_models[MODEL] = status
    with pytest.raises(openai.APIStatusError):
        chat(server, max_retries=1).invoke("hi")
    assert server.models_called() == [MODEL] * attempts


def test_tools_to_model_without_tool_endpoints_is_404(server: OfflineOpenRouter) -> None:
    llama = "meta-llama/llama-3.1-8b-instruct"
    server.faults.no_tool_models.add(llama)

    @tool
    def get_weather(location: str) -> str:
        """Weather for a location."""
        return "sunny"

    with pytest.raises(openai.NotFoundError) as info:
        chat(server, model=llama).bind_tools([get_weather]).invoke("Weather in Paris?")
    assert isinstance(info.value.body, dict)
    assert info.value.body["message"] == NO_TOOL_ENDPOINTS
    assert chat(server, model=llama).invoke("Hello").text  # plain requests still work


MEDIA_PARTS = {
    "image": {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    "file": {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="},
    },
    "audio": {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    "video": {"type": "video_url", "video_url": {"url": "https://example.com/clip.mp4"}},
}


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("image", "meta-llama/llama-3.1-8b-instruct"),
        ("file", "qwen/qwen3-235b-a22b-2507"),
        ("audio", "mistralai/mistral-large-2512"),
        ("video", "openai/gpt-5"),
    ],
)
def test_media_a_model_does_not_accept_is_404(
    server: OfflineOpenRouter, client: openai.OpenAI, kind: str, model: str
) -> None:
    """OpenRouter's answer when no provider of the model takes that input (the fixture's
    ``architecture.input_modalities`` lacks it); a model that takes it answers."""
    assert kind not in MODELS[model].input_modalities
    content = [{"type": "text", "text": "What is in this attachment?"}, MEDIA_PARTS[kind]]
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    response = post(server, body)
    assert response.status_code == 404
    message = f"No endpoints found that support {kind} input"
    assert response.json() == {"error": {"message": message, "code": 404}}
    assert post(server, body).content == response.content  # a pure function of the request
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(**body)
    assert classify(info.value).retryable, "the router falls back on it like on the tool-use 404"
    assert post(server, {**body, "model": MODEL}).status_code == 200


def test_text_only_requests_reach_text_only_models(client: openai.OpenAI) -> None:
    parts: Any = [{"type": "text", "text": "Hello"}]
    result = client.chat.completions.create(
        model="meta-llama/llama-3.1-8b-instruct", messages=[{"role": "user", "content": parts}]
    )
    assert result.choices[0].message.content


def test_usage_cost_matches_list_prices(client: openai.OpenAI) -> None:
    for model in MODELS.values():
        result = client.chat.completions.create(
            model=model.id, messages=[{"role": "user", "content": "Hello"}]
        )
        usage = result.usage
        assert usage is not None
        expected = (
            usage.prompt_tokens * float(model.input_usd_per_mtok)
            + usage.completion_tokens * float(model.output_usd_per_mtok)
        ) / 1e6
        assert usage.model_dump()["cost"] == pytest.approx(expected)
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streamed_usage_contains_cost(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write me 2 haikus."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(bool(c.choices and c.choices[0].delta.content) for c in chunks) > 1
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.model_dump()["cost"] > 0
    assert {c.id for c in chunks} == {last.id}
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)


def test_raw_sse_wire_format(server: OfflineOpenRouter) -> None:
    body = {**HELLO, "stream": True, "stream_options": {"include_usage": True}}
    response = post(server, body)
    assert response.headers["content-type"] == "text/event-stream"
    events = [e for e in response.text.split("\n\n") if e]
    assert events[0].startswith(":")  # OpenRouter's keep-alive comment
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[1:-1]]
    assert "cost" in payloads[-1]["usage"]


def test_chatopenai_exposes_cost_only_when_not_streaming(server: OfflineOpenRouter) -> None:
    """What the package must know: invoke keeps ``cost`` in ``token_usage``; a
    stream's ``usage_metadata`` has token counts but ChatOpenAI drops ``cost``."""
    llm = chat(server)
    result = llm.invoke("Hello")
    assert result.response_metadata["token_usage"]["cost"] > 0
    full: AIMessageChunk | None = None
    for chunk in llm.stream("Hello"):
        full = chunk if full is None else full + chunk
    assert full is not None
    assert full.usage_metadata is not None
    assert full.usage_metadata["input_tokens"] > 0
    assert "cost" not in json.dumps(full.response_metadata)


def test_stream_abort_after_first_chunk_raises(server: OfflineOpenRouter) -> None:
    server.faults.stream_fail_after_first_chunk.add(MODEL)
    received: list[str] = []

    def consume() -> None:
        for chunk in chat(server).stream("Tell me a long story"):
            received.append(chunk.text)

    with pytest.raises(openai.APIConnectionError):
        consume()
    assert "".join(received)  # the first content chunk did arrive


def test_delay_triggers_client_timeout(server: OfflineOpenRouter) -> None:
    server.faults.delay_s = 10.0
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        chat(server, timeout=0.2).invoke("hi")
    assert time.monotonic() - started < 5, "the client gave up long before the answer"


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1"])
def test_models_endpoint(server: OfflineOpenRouter, prefix: str) -> None:
    server.faults.no_tool_models.add("meta-llama/llama-3.1-8b-instruct")
    response = httpx2.get(f"http://127.0.0.1:{server.port}{prefix}/models")
    models = {m["id"]: m for m in response.json()["data"]}
    assert set(models) == set(MODELS)
    flash = models[MODEL]
    assert flash["pricing"]["prompt"] == "0.0000003"
    assert flash["pricing"]["completion"] == "0.0000025"
    assert flash["context_length"] == 1_048_576
    assert "tools" in flash["supported_parameters"]
    assert "tools" not in models["meta-llama/llama-3.1-8b-instruct"]["supported_parameters"]


def test_models_endpoint_failure_and_usage_without_cost(
    server: OfflineOpenRouter, client: openai.OpenAI
) -> None:
    server.faults.models_status = 503
    response = httpx2.get(f"{server.base_url}/models")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == 503
    server.faults.omit_cost_models.add(MODEL)
    result = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}]
    )
    assert result.usage is not None
    assert "cost" not in result.usage.model_dump()
    assert result.usage.prompt_tokens > 0
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = list(stream)[-1].usage
    assert usage is not None
    assert "cost" not in usage.model_dump()


def test_same_request_same_bytes(server: OfflineOpenRouter) -> None:
    first, second = post(server, HELLO), post(server, HELLO)
    assert first.content == second.content
    assert server.requests == [HELLO, HELLO]


def test_stop_and_max_tokens(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Hello"}]
    cut = client.chat.completions.create(model=MODEL, messages=messages, stop=["deterministic"])
    assert cut.choices[0].message.content == 'Hello! You said: "Hello". This is a '
    short = client.chat.completions.create(model=MODEL, messages=messages, max_completion_tokens=2)
    assert short.choices[0].message.content == "Hello! You"
    assert short.choices[0].finish_reason == "length"


def test_parallel_tool_calls_follow_mentions(server: OfflineOpenRouter) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @tool
    def shout(word: str) -> str:
        """Upper-case a word."""
        return word.upper()

    question = "Use add on 2 and 5, then shout 'hi'."
    both = chat(server).bind_tools([add, shout]).invoke(question)
    assert [(c["name"], c["args"]) for c in both.tool_calls] == [
        ("add", {"a": 2, "b": 5}),
        ("shout", {"word": "hi"}),
    ]
    one = chat(server).bind_tools([add, shout], parallel_tool_calls=False).invoke(question)
    assert [c["name"] for c in one.tool_calls] == ["add"]
    forced = chat(server).bind_tools([add, shout], tool_choice="shout").invoke(question)
    assert [c["name"] for c in forced.tool_calls] == ["shout"]
    none = chat(server).bind_tools([add, shout], tool_choice="none").invoke(question)
    assert not none.tool_calls
    assert none.text


def test_nested_schema_arguments(server: OfflineOpenRouter) -> None:
    schema = {
        "title": "plan_trip",
        "description": "Plan a trip.",
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "nights": {"type": "integer", "minimum": 1},
            "mode": {"type": "string", "enum": ["train", "plane"]},
            "stops": {"type": "array", "items": {"$ref": "#/$defs/Stop"}},
        },
        "required": ["city", "nights", "mode", "stops"],
        "$defs": {"Stop": {"type": "object", "properties": {"day": {"type": "integer"}}}},
    }
    result = chat(server).bind_tools([schema]).invoke("Plan 0 nights in Lisbon, stop on day 3")
    assert result.tool_calls[0]["args"] == {
        "city": "Lisbon",
        "nights": 1,
        "mode": "train",
        "stops": [{"day": 3}],
    }


def test_json_object_without_named_keys(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give me JSON about cats"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(result.choices[0].message.content or "") == {
        "response": "Give me JSON about cats"
    }


def test_content_parts_and_system_messages(server: OfflineOpenRouter) -> None:
    pixel = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42"
        "mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    )
    question = HumanMessage(
        [
            {"type": "text", "text": "Describe this image."},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pixel}"}},
        ]
    )
    result = chat(server).invoke([SystemMessage("Be brief."), question])
    assert result.text == (
        'Hello! You said: "Describe this image. [image_url]". '
        "This is a deterministic reply from google/gemini-2.5-flash."
    )
    assert server.requests[0]["messages"][0] == {"role": "system", "content": "Be brief."}


# --------------------------------------------------------------------------- injected answer faults


def sse_data(response: httpx2.Response) -> list[str]:
    """The ``data:`` payloads of an SSE response, in order."""
    return [
        line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: ")
    ]


def test_retry_after_and_per_model_delay(server: OfflineOpenRouter) -> None:
    server.faults.fail_models[MODEL] = 429
    server.faults.retry_after = "10"
    assert post(server, HELLO).headers["retry-after"] == "10"
    server.reset()
    server.faults.model_delay_s["google/gemini-2.5-pro"] = 10.0
    started = time.perf_counter()
    assert post(server, HELLO).status_code == 200
    assert time.perf_counter() - started < 5, "other models are not delayed"
    with pytest.raises(httpx2.ReadTimeout):  # a lower bound only: load cannot make it fail
        httpx2.post(
            f"{server.base_url}/chat/completions",
            json={**HELLO, "model": "google/gemini-2.5-pro"},
            headers={"Authorization": "Bearer test-key"},
            timeout=0.3,
        )


def test_error_body_and_empty_choices_are_http_200(server: OfflineOpenRouter) -> None:
    server.faults.error_body_models[MODEL] = 502
    response = post(server, HELLO)
    assert response.status_code == 200
    assert response.json() == {"error": {"message": "Provider returned error", "code": 502}}
    server.reset()
    server.faults.empty_choices_models.add(MODEL)
    response = post(server, HELLO)
    assert response.status_code == 200
    assert response.json()["choices"] == []
    assert response.json()["usage"]["total_tokens"] > 0


def test_stream_error_event_and_malformed_first_event(server: OfflineOpenRouter) -> None:
    streamed = {**HELLO, "stream": True}
    server.faults.stream_error_event_models.add(MODEL)
    events = sse_data(post(server, streamed))
    assert json.loads(events[0])["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert json.loads(events[1])["error"]["code"] == 502
    assert events[2:] == ["[DONE]"]
    server.reset()
    server.faults.stream_malformed_first_event_models.add(MODEL)
    events = sse_data(post(server, streamed))
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[0])
    assert json.loads(events[1])["choices"][0]["delta"]["role"] == "assistant"


@pytest.mark.parametrize("cost", ["abc", -0.5, float("nan"), 1e308])
def test_cost_override_and_reported_model(server: OfflineOpenRouter, cost: Any) -> None:
    server.faults.cost_overrides[MODEL] = cost
    server.faults.reported_models[MODEL] = "google/gemini-2.5-flash-001"
    answer = json.loads(post(server, HELLO).text)  # json.loads reads NaN, as the SDK does
    assert answer["model"] == "google/gemini-2.5-flash-001"
    sent = answer["usage"]["cost"]
    assert sent == cost or (sent != sent and cost != cost)  # NaN != NaN
    usage = json.loads(sse_data(post(server, {**HELLO, "stream": True, **INCLUDE_USAGE}))[-2])
    assert usage["model"] == "google/gemini-2.5-flash-001"
    assert "cost" in usage["usage"]


INCLUDE_USAGE = {"stream_options": {"include_usage": True}}
