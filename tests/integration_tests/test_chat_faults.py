"""Provider faults, timeouts and retries, against the local server's failure injection.

A paid answer is never lost to a malformed cost; a broken answer (an error object or no
choices in an HTTP 200, an error or malformed event before the first token) is retried and
then served by the next-best model; a hung or rate-limited model costs a bounded wait.
"""

from __future__ import annotations

import math
import time
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessageChunk

from langchain_avengers import AvengersChatModel, load_default_router
from langchain_avengers.catalog.base import load_catalog
from langchain_avengers.chat_models.base import DEFAULT_TIMEOUT_S
from langchain_avengers.testing import OfflineOpenRouter

SECRET = "sk-or-v1-test-secret-faults-0123456789"
QUERY = "Prove that there are infinitely many prime numbers."
ORDER = [c.model for c in load_default_router().route(QUERY, 0.5).candidates]
"""The models a call of QUERY at alpha 0.5 tries, best first."""


def make_llm(server: OfflineOpenRouter, **kwargs: Any) -> AvengersChatModel:
    params: dict[str, Any] = {"base_url": server.base_url, "api_key": SECRET, "timeout": 5}
    return AvengersChatModel(**{**params, **kwargs})


def streamed(llm: AvengersChatModel, text: str = QUERY) -> AIMessageChunk:
    chunks = list(llm.stream(text, alpha=0.5))
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    return full


def list_price(message: Any, model: str) -> float:
    profile = load_catalog()[model]
    usage = message.usage_metadata
    return (
        usage["input_tokens"] * profile["input_usd_per_mtok"]
        + usage["output_tokens"] * profile["output_usd_per_mtok"]
    ) / 1e6


# ---------------------------------------------------------------------------- costs


@pytest.mark.parametrize(
    ("billed", "why"),
    [("abc", "not a number"), (-0.5, "negative"), (math.nan, "not finite"), (1e308, "exceeds")],
)
@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_impossible_billed_cost_keeps_the_answer_and_uses_list_prices(
    server: OfflineOpenRouter, billed: Any, why: str, mode: str
) -> None:
    server.faults.cost_overrides[ORDER[0]] = billed
    llm = make_llm(server, max_retries=0)
    message = llm.invoke(QUERY, alpha=0.5) if mode == "invoke" else streamed(llm)
    assert message.content
    info = message.response_metadata["avengers"]
    assert info["cost_source"] == "list_prices"
    assert why in info["cost_note"]
    assert info["actual_cost"] == pytest.approx(list_price(message, ORDER[0]))
    assert message.response_metadata["cost"] == info["actual_cost"]
    if mode == "invoke":
        assert message.usage_metadata["total_cost"] == info["actual_cost"]
    assert server.models_called() == [ORDER[0]], "a bad cost is not a reason to ask again"


def test_plausible_billed_cost_is_reported_and_split_by_list_prices(
    server: OfflineOpenRouter,
) -> None:
    message = make_llm(server).invoke(QUERY, alpha=0.5)
    usage = message.usage_metadata
    billed = message.response_metadata["token_usage"]["cost"]
    assert message.response_metadata["avengers"]["cost_source"] == "openrouter"
    assert usage["total_cost"] == billed == message.response_metadata["cost"]
    assert usage["input_cost"] + usage["output_cost"] == pytest.approx(billed)
    profile = load_catalog()[ORDER[0]]
    listed_in = usage["input_tokens"] * profile["input_usd_per_mtok"] / 1e6
    assert usage["input_cost"] == pytest.approx(listed_in * billed / list_price(message, ORDER[0]))


# ---------------------------------------------------------------------------- broken answers


def test_http_200_error_body_is_retried_then_falls_back(server: OfflineOpenRouter) -> None:
    server.faults.error_body_models[ORDER[0]] = 502
    message = make_llm(server, max_retries=1).invoke(QUERY, alpha=0.5)
    assert message.response_metadata["model_name"] == ORDER[1]
    assert server.models_called() == [ORDER[0], ORDER[0], ORDER[1]]
    info = message.response_metadata["avengers"]
    assert [(f["model"], f["status"]) for f in info["retries"]] == [(ORDER[0], 502)]
    assert [(f["model"], f["status"]) for f in info["fallbacks"]] == [(ORDER[0], 502)]
    assert "Provider returned error" in info["fallbacks"][0]["message"]


def test_http_200_error_body_with_a_client_error_code_is_not_retried(
    server: OfflineOpenRouter,
) -> None:
    server.faults.error_body_models[ORDER[0]] = 400
    with pytest.raises(openai.APIError, match="Provider returned error"):
        make_llm(server).invoke(QUERY, alpha=0.5)
    assert server.models_called() == [ORDER[0]]


def test_empty_choices_is_a_provider_error_and_falls_back(server: OfflineOpenRouter) -> None:
    server.faults.empty_choices_models.add(ORDER[0])
    message = make_llm(server, max_retries=0).invoke(QUERY, alpha=0.5)
    assert message.response_metadata["model_name"] == ORDER[1]
    failure = message.response_metadata["avengers"]["fallbacks"][0]
    assert failure["error"] == "ProviderError"
    assert "no choices" in failure["message"]


@pytest.mark.parametrize(
    "fault", ["stream_error_event_models", "stream_malformed_first_event_models"]
)
async def test_stream_fault_before_the_first_token_falls_back(
    server: OfflineOpenRouter, fault: str
) -> None:
    getattr(server.faults, fault).add(ORDER[0])
    llm = make_llm(server, max_retries=0)
    for chunks in (
        list(llm.stream(QUERY, alpha=0.5)),
        [c async for c in llm.astream(QUERY, alpha=0.5)],
    ):
        assert chunks[0].response_metadata["model_name"] == ORDER[1]
        assert chunks[0].response_metadata["avengers"]["fallbacks"][0]["model"] == ORDER[0]
        text = "".join(c.text for c in chunks)
        assert text.endswith(f"deterministic reply from {ORDER[1]}.")
    assert server.models_called() == [ORDER[0], ORDER[1]] * 2


# ---------------------------------------------------------------------------- waiting


def test_default_timeout_is_finite_and_reaches_every_client() -> None:
    llm = AvengersChatModel(api_key=SECRET)
    assert llm.timeout == DEFAULT_TIMEOUT_S == 120
    for model in llm.pool:
        client = llm._clients[model]
        assert client.request_timeout == DEFAULT_TIMEOUT_S
        assert client.max_retries == 0, "retries are the router's, bounded per model"


HUNG_S = 10.0
"""A hung model's delay: far beyond the 0.3 s timeout, far above any loaded machine's call."""
LONG_RETRY_AFTER = "60"
"""A ``Retry-After`` over ``MAX_RETRY_WAIT_S``: the router moves on instead of waiting."""


def test_hung_model_falls_back_after_one_timeout(server: OfflineOpenRouter) -> None:
    server.faults.model_delay_s[ORDER[0]] = HUNG_S
    started = time.perf_counter()
    message = make_llm(server, timeout=0.3).invoke(QUERY, alpha=0.5)  # default max_retries
    elapsed = time.perf_counter() - started
    assert message.response_metadata["model_name"] == ORDER[1]
    assert server.models_called() == [ORDER[0], ORDER[1]], "a timeout is not retried"
    assert elapsed < HUNG_S / 2, "the hung model's answer was not waited for"


def test_long_retry_after_goes_to_the_next_model_at_once(server: OfflineOpenRouter) -> None:
    server.faults.fail_models[ORDER[0]] = 429
    server.faults.retry_after = LONG_RETRY_AFTER
    started = time.perf_counter()
    message = make_llm(server).invoke(QUERY, alpha=0.5)  # default max_retries
    assert time.perf_counter() - started < float(LONG_RETRY_AFTER) / 2, "the wait was skipped"
    assert message.response_metadata["model_name"] == ORDER[1]
    assert server.models_called() == [ORDER[0], ORDER[1]]
    server.reset()
    server.faults.fail_models[ORDER[0]] = 429
    server.faults.retry_after = LONG_RETRY_AFTER
    started = time.perf_counter()
    with pytest.raises(openai.RateLimitError):
        make_llm(server, max_fallbacks=0).invoke(QUERY, alpha=0.5)
    elapsed = time.perf_counter() - started
    assert elapsed < float(LONG_RETRY_AFTER) / 2, "no waiting when nothing is left to try"


def test_short_retry_after_retries_the_same_model_first(server: OfflineOpenRouter) -> None:
    server.faults.fail_models[ORDER[0]] = 429  # retry-after: 0
    message = make_llm(server, max_retries=2).invoke(QUERY, alpha=0.5)
    assert server.models_called() == [ORDER[0]] * 3 + [ORDER[1]]
    assert len(message.response_metadata["avengers"]["retries"]) == 2
