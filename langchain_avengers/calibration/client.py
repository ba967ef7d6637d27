"""One chat call to an OpenAI-compatible endpoint (OpenRouter by default), measured.

Retries are the ``openai`` SDK's own (``max_retries``): it retries 408, 409, 429 and 5xx
answers, timeouts and connection errors with exponential backoff (0.5 s doubling to 8 s, with
jitter) and waits what a ``Retry-After`` / ``retry-after-ms`` header asks (a wait over two
minutes is not retried).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import openai

from langchain_avengers.catalog.base import list_price_cost
from langchain_avengers.openrouter import (
    API_KEY_ENV,
    BASE_URL_ENV,
    OPENROUTER_BASE_URL,
    OPENROUTER_HOST,
)
from langchain_avengers.openrouter.answers import NOT_JSON, body_excerpt, unusable_answer
from langchain_avengers.openrouter.billing import billed_cost
from langchain_avengers.openrouter.errors import redact, redact_error, request_url

__all__ = [
    "ApiSettings",
    "Completion",
    "EmptyAnswerError",
    "RefusedCostError",
    "complete",
    "make_client",
]

DEFAULT_BASE_URL = OPENROUTER_BASE_URL
DEFAULT_KEY_ENV = API_KEY_ENV


class EmptyAnswerError(Exception):
    """A 200 answer that holds no usable answer.

    No choices, a choice that ended in an error, an error object, or a body that is not
    JSON (an HTML page from a gateway).
    """


class RefusedCostError(EmptyAnswerError):
    """An answer billed a ``usage.cost`` that cannot be right.

    Not a number, not finite, negative, or above what its tokens can cost: the pair fails
    rather than record it.
    """


@dataclass(frozen=True)
class ApiSettings:
    """Where calls go and how patiently; the key never appears in a repr."""

    base_url: str = DEFAULT_BASE_URL
    api_key: str = field(default="", repr=False)
    timeout: float = 180.0
    """Seconds per attempt before it is abandoned (and retried)."""
    max_retries: int = 4
    """Retries per call after the first attempt (429, 5xx, timeouts)."""

    @classmethod
    def from_env(
        cls,
        *,
        base_url: str | None = None,
        api_key_env: str = DEFAULT_KEY_ENV,
        timeout: float = 180.0,
        max_retries: int = 4,
    ) -> ApiSettings:
        """Settings from the environment.

        Base URL from the argument, ``$OPENROUTER_BASE_URL`` or OpenRouter; key from the
        environment variable ``api_key_env``.

        Raises:
            ValueError: the variable is unset or empty.
        """
        key = os.environ.get(api_key_env, "").strip()
        if not key:
            msg = f"no API key: set ${api_key_env} (or name another variable with --api-key-env)"
            raise ValueError(msg)
        url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        return cls(base_url=url, api_key=key, timeout=timeout, max_retries=max_retries)

    @property
    def is_openrouter(self) -> bool:
        """Whether the endpoint is OpenRouter itself (it takes ``usage: {include: true}``)."""
        host = urlparse(self.base_url).hostname or ""
        return host == OPENROUTER_HOST or host.endswith(f".{OPENROUTER_HOST}")


def make_client(settings: ApiSettings) -> openai.AsyncOpenAI:
    """The async OpenAI client for ``settings`` (build it inside the running event loop)."""
    return openai.AsyncOpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )


@dataclass(frozen=True)
class Completion:
    """An answer and what it cost."""

    text: str
    answered_by: str | None
    """The model id in the response (OpenRouter may name a dated version)."""
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    cost: float | None
    """USD; ``None`` when neither the endpoint nor the catalog says."""
    cost_source: str | None
    """``"openrouter"`` (``usage.cost``), ``"list_prices"`` (tokens x catalog) or None."""
    latency_s: float
    """Seconds of the attempt that answered (retries and backoff excluded)."""
    retries: int
    truncated: bool
    """The answer stopped at ``max_tokens``."""


async def complete(
    client: openai.AsyncOpenAI,
    model: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    profile: Mapping[str, Any] | None,
    openrouter: bool,
) -> Completion:
    """Ask ``model`` once (with the client's retries) and measure the answer.

    Temperature is 0 unless the model's profile says it takes none. ``max_tokens`` bounds
    the completion (reasoning included), and so the worst-case cost.

    Raises:
        openai.APIError: the call failed after its retries (an API key quoted in the
            error body is redacted).
        EmptyAnswerError: the endpoint answered 200 without a usable answer.
        RefusedCostError: the answer's ``usage.cost`` cannot be right (see
            :func:`~langchain_avengers.openrouter.billing.billed_cost`).
    """
    params: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    if not profile or profile.get("temperature", True):
        params["temperature"] = 0
    if openrouter:
        params["extra_body"] = {"usage": {"include": True}}
    try:
        raw = await client.chat.completions.with_raw_response.create(**params)
    except Exception as error:  # a key echoed in an error body must not reach the summary
        raise redact_error(error, client.api_key) from error.__cause__
    try:
        result: Any = raw.parse()
    except ValueError as error:  # an HTML page labelled as JSON
        msg = f"{NOT_JSON} ({body_excerpt(raw.text)!r})"
        raise EmptyAnswerError(msg) from error
    unusable = unusable_answer(result)
    if unusable is not None:
        raise EmptyAnswerError(redact(unusable[0], client.api_key))
    choice = result.choices[0]
    usage = result.usage
    prompt = usage.prompt_tokens if usage else None
    completion = usage.completion_tokens if usage else None
    details = usage.completion_tokens_details if usage else None
    cost, source = _cost(usage, profile, prompt, completion)
    return Completion(
        text=choice.message.content or "",
        answered_by=result.model or None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=details.reasoning_tokens if details else None,
        cost=cost,
        cost_source=source,
        latency_s=round(raw.elapsed.total_seconds(), 4),
        retries=raw.retries_taken,
        truncated=choice.finish_reason == "length",
    )


def _cost(
    usage: Any, profile: Mapping[str, Any] | None, prompt: int | None, completion: int | None
) -> tuple[float | None, str | None]:
    billed = (usage.model_extra or {}).get("cost") if usage is not None else None
    cost, refused = billed_cost(billed, (prompt or 0) + (completion or 0))
    if refused:
        msg = f"refused the answer's {refused}"
        raise RefusedCostError(msg)
    if cost is not None:
        return cost, "openrouter"
    if prompt is not None and completion is not None:
        priced = list_price_cost(profile, prompt, completion)
        if priced is not None:
            return priced, "list_prices"
    return None, None


def failure_reason(error: BaseException) -> str:
    """A short, key-free description of a failed call, for the run summary."""
    if isinstance(error, openai.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        message = " ".join(str(body.get("message") or error.message).split())[:120]
        return f"HTTP {error.status_code} {type(error).__name__}: {message}"
    if isinstance(error, openai.APITimeoutError):
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        url = request_url(error)
        return f"connection error ({url})" if url else "connection error"
    return f"{type(error).__name__}: {' '.join(str(error).split())[:120]}"


def may_have_been_billed(error: BaseException) -> bool:
    """Whether a failed call may have cost something.

    A timeout, a dropped connection or a refused bill may have; an HTTP error answer did not.
    """
    billed = (openai.APITimeoutError, openai.APIConnectionError, RefusedCostError)
    return isinstance(error, billed)


def is_fatal(error: BaseException) -> bool:
    """401 (bad key) and 402 (no credits) fail every call: stop the run."""
    return isinstance(error, openai.APIStatusError) and error.status_code in (401, 402)
