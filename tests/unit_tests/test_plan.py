"""The retry and fallback policy of one call, on the OpenAI SDK's own error objects.

Transient failures retry the same model (bounded), a long ``Retry-After``, a timeout or the
"no endpoint" 404 go to the next model at once, and client errors raise at once.
"""

from __future__ import annotations

import json

import httpx2
import openai
import pytest

from langchain_avengers.chat_models.attempts import MAX_RETRY_WAIT_S, Plan
from langchain_avengers.openrouter.errors import ProviderError, classify, retry_after

REQUEST = httpx2.Request("POST", "http://127.0.0.1:9/api/v1/chat/completions")
MODELS = ["m-a", "m-b", "m-c"]


def status_error(status: int, retry_after_header: str | None = None) -> openai.APIStatusError:
    headers = {"retry-after": retry_after_header} if retry_after_header is not None else {}
    body = {"error": {"message": f"failure {status}", "code": status}}
    response = httpx2.Response(status, headers=headers, json=body, request=REQUEST)
    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9", max_retries=0)
    return client._make_status_error_from_response(response)


def plan(max_fallbacks: int = 2, max_retries: int = 1) -> Plan:
    return Plan(
        order=list(MODELS),
        summary={},
        candidates={},
        max_fallbacks=max_fallbacks,
        max_retries=max_retries,
    )


def walk(p: Plan, errors: list[Exception]) -> list[tuple[str, bool, float]]:
    """Fail each attempt with the next error; ``(model, first try, wait)`` per attempt."""
    steps = []
    attempts = p.attempts()
    for error in errors:
        model, first = next(attempts)
        steps.append((model, first, p.after_failure(model, error)))
    return steps


def test_transient_failure_retries_the_same_model_then_falls_back() -> None:
    p = plan(max_retries=2)
    steps = walk(p, [status_error(503)] * 3)
    assert steps == [("m-a", True, 0.5), ("m-a", False, 1.0), ("m-a", False, 0.0)]
    assert next(p.attempts()) == ("m-b", True)
    assert len(p.retries) == 2
    assert [f["model"] for f in p.fallbacks] == ["m-a"]


@pytest.mark.parametrize(
    ("header", "wait"), [("0", 0.0), ("2", 2.0), ("retry-after-ms", 0.25), (None, 0.5)]
)
def test_short_retry_after_is_honoured(header: str | None, wait: float) -> None:
    if header == "retry-after-ms":
        response = httpx2.Response(429, headers={"retry-after-ms": "250"}, request=REQUEST)
        error: Exception = openai.RateLimitError("slow down", response=response, body=None)
    else:
        error = status_error(429, header)
    assert walk(plan(), [error]) == [("m-a", True, wait)]


def test_long_retry_after_falls_back_at_once_and_raises_on_the_last_model() -> None:
    too_long = str(int(MAX_RETRY_WAIT_S) + 5)
    p = plan(max_fallbacks=1)
    assert walk(p, [status_error(429, too_long)]) == [("m-a", True, 0.0)]
    with pytest.raises(openai.RateLimitError):
        walk(p, [status_error(429, too_long)])


def test_timeouts_and_no_endpoint_404_fall_back_without_retry() -> None:
    timeout = openai.APITimeoutError(request=REQUEST)
    response = httpx2.Response(
        404,
        json={"error": {"message": "No endpoints found that support tool use."}},
        request=REQUEST,
    )
    no_endpoint = openai.NotFoundError(
        "No endpoints found that support tool use.", response=response, body=None
    )
    steps = walk(plan(max_retries=3), [timeout, no_endpoint])
    assert steps == [("m-a", True, 0.0), ("m-b", True, 0.0)]


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
def test_client_errors_raise_at_once(status: int) -> None:
    p = plan()
    with pytest.raises(openai.APIStatusError):
        walk(p, [status_error(status)])
    assert p.retries == p.fallbacks == []


def test_fallbacks_are_bounded_and_the_error_lists_the_models_tried() -> None:
    p = plan(max_fallbacks=1, max_retries=0)
    walk(p, [status_error(500)])
    with pytest.raises(openai.InternalServerError) as info:
        walk(p, [status_error(500)])
    notes = getattr(info.value, "__notes__", None)
    if notes is not None:  # Python 3.11+
        assert notes == ["avengers: tried m-a (InternalServerError) before m-b failed too"]


def test_provider_errors_and_stream_error_events_classify_by_their_code() -> None:
    assert classify(ProviderError("x", REQUEST, status_code=502)).same_model
    assert classify(ProviderError("no choices", REQUEST, status_code=None)).retryable
    assert not classify(ProviderError("x", REQUEST, status_code=400)).retryable
    event = openai.APIError("Provider returned error", REQUEST, body={"code": 502})
    assert classify(event).retryable
    named = openai.APIError("overloaded", REQUEST, body={"code": "server_error"})
    assert classify(named).retryable
    assert not classify(ValueError("a bug")).retryable
    assert not classify(json.JSONDecodeError("x", "", 0)).retryable, "raw JSON errors: ours wrap"


def test_retry_after_parses_seconds_milliseconds_and_dates() -> None:
    assert retry_after(httpx2.Headers({"retry-after": "3"})) == 3.0
    assert retry_after(httpx2.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert retry_after(httpx2.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after(httpx2.Headers({"retry-after": "soon"})) is None
    assert retry_after(httpx2.Headers({})) is None
