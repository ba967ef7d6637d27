"""OpenRouter specifics: a ChatOpenAI for OpenRouter, failure classes, token estimates.

The ChatOpenAI subclass keeps the streamed cost and turns broken answers into errors.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

NO_ENDPOINT = "No endpoints found that support"
"""Start of OpenRouter's 404 when no provider of a model serves a feature (tool use, images...)."""
BYTES_PER_TOKEN = 4
RETRYABLE_STATUSES = frozenset({408, 429})
"""Besides every 5xx: request timeout and rate limit."""


class ProviderError(openai.APIError):
    """OpenRouter answered HTTP 200 but with no usable completion.

    OpenRouter sends ``{"error": {"code": 502, ...}}`` with status 200 when an upstream
    provider fails, and some providers send ``"choices": []`` or a malformed stream event.
    ``status_code`` is the code the error body carries, or ``None``.
    """

    def __init__(self, message: str, request: httpx2.Request, *, status_code: int | None) -> None:
        super().__init__(message, request, body={"message": message, "code": status_code})
        self.status_code = status_code


class OpenRouterChatOpenAI(ChatOpenAI):
    """ChatOpenAI that keeps OpenRouter's ``usage.cost`` and turns broken answers into errors.

    ChatOpenAI maps a streamed ``usage`` to ``usage_metadata`` and drops ``cost``; the router
    needs it to report what a streamed call really cost. Broken answers (an error object or
    no choices in an HTTP 200 body, a malformed stream event) become :class:`ProviderError`,
    which the router treats like the HTTP failure they stand for.
    """

    def _convert_chunk_to_generation_chunk(
        self,
        chunk: dict,
        default_chunk_class: type,
        base_generation_info: dict | None,
    ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        cost = (chunk.get("usage") or {}).get("cost")
        if generation is not None and cost is not None:
            generation.message.response_metadata["openrouter_cost"] = cost
        return generation

    def _create_chat_result(
        self, response: dict | openai.BaseModel, generation_info: dict | None = None
    ) -> ChatResult:
        error = _field(response, "error")
        if error:
            raise self._provider_error(error)
        if not _field(response, "choices"):
            msg = "the provider answered with no choices (an empty completion)"
            raise ProviderError(msg, self._request(), status_code=None)
        return super()._create_chat_result(response, generation_info)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        try:
            yield from super()._stream(*args, **kwargs)
        except json.JSONDecodeError as error:
            raise self._malformed_event(error) from error

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
        except json.JSONDecodeError as error:
            raise self._malformed_event(error) from error

    def _request(self) -> httpx2.Request:
        """The request an error stands for (no headers, so no key)."""
        return httpx2.Request("POST", f"{self.openai_api_base}/chat/completions")

    def _provider_error(self, error: object) -> ProviderError:
        message = error.get("message") if isinstance(error, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        return ProviderError(
            f"the provider answered HTTP 200 with an error: {message or error}",
            self._request(),
            status_code=_as_status(code),
        )

    def _malformed_event(self, error: json.JSONDecodeError) -> ProviderError:
        return ProviderError(
            f"the provider sent a malformed stream event ({error.msg})",
            self._request(),
            status_code=None,
        )


def _field(response: dict | Any, name: str) -> Any:
    if isinstance(response, dict):
        return response.get(name)
    return getattr(response, name, None)


def _as_status(code: object) -> int | None:
    """An HTTP-like status from an error body's ``code`` (``502``, ``"502"``), else None."""
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return None


# ---------------------------------------------------------------------- failures


@dataclass(frozen=True)
class Failure:
    """How the router treats one failed request."""

    retryable: bool
    """Worth trying on another model."""
    same_model: bool
    """Worth retrying on the same model first (a transient failure, not a hang or a refusal)."""
    status: int | None
    retry_after: float | None
    """Seconds the provider asked to wait (``Retry-After``), if it said."""


NOT_RETRYABLE = Failure(retryable=False, same_model=False, status=None, retry_after=None)


def classify(error: BaseException) -> Failure:
    """Provider failures worth another attempt, and whether on the same model.

    Retryable: 408, 429, 5xx, timeouts, connection errors, HTTP 200 answers carrying such an
    error or no choices, stream error events, malformed stream events, and OpenRouter's 404
    when no provider of the model serves the request's tools or input kinds. Timeouts and
    that 404 go to the next model at once: a hung or unable provider stays so.
    """
    if isinstance(error, openai.APITimeoutError):
        return Failure(retryable=True, same_model=False, status=None, retry_after=None)
    if isinstance(error, openai.APIConnectionError):
        return Failure(retryable=True, same_model=True, status=None, retry_after=None)
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status == 404 and NO_ENDPOINT in str(error):
            return Failure(retryable=True, same_model=False, status=status, retry_after=None)
        return _by_status(status, retry_after(error.response.headers))
    if isinstance(error, ProviderError):
        return _by_status(error.status_code, None)
    if isinstance(error, openai.APIError):  # an error event inside a stream
        return _by_status(_as_status(error.code), None)
    return NOT_RETRYABLE


def _by_status(status: int | None, wait: float | None) -> Failure:
    if status is None or status >= 500 or status in RETRYABLE_STATUSES:
        return Failure(retryable=True, same_model=True, status=status, retry_after=wait)
    return Failure(retryable=False, same_model=False, status=status, retry_after=None)


def retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (a number or an HTTP date)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        return max(seconds, 0.0) if math.isfinite(seconds) else math.inf
    return None


def describe_failure(model: str, error: BaseException) -> dict[str, Any]:
    """What to record about a failed attempt: no request, headers or key, just the error."""
    status = getattr(error, "status_code", None) or classify(error).status
    message = getattr(error, "message", None) or str(error)
    return {"model": model, "error": type(error).__name__, "status": status, "message": message}


# ---------------------------------------------------------------------- messages


def message_text(message: BaseMessage) -> str:
    """The plain text of a message (text parts of multi-part content)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "\n".join(parts)


# Content-part types (OpenAI, LangChain standard and Anthropic shapes) -> profile flag needed.
_MEDIA_PARTS = {
    "image_url": "image_inputs",
    "image": "image_inputs",
    "input_audio": "audio_inputs",
    "audio": "audio_inputs",
    "video": "video_inputs",
    "video_url": "video_inputs",
    "file": "pdf_inputs",
    "document": "pdf_inputs",
}


def media_inputs(messages: list[BaseMessage]) -> set[str]:
    """Profile flags the messages' media parts need (``image_inputs``, ``pdf_inputs``...).

    OpenRouter takes files as PDFs, so any file part needs ``pdf_inputs``.
    """
    needs = set()
    for message in messages:
        if isinstance(message.content, str):
            continue
        for part in message.content:
            if isinstance(part, dict) and (flag := _MEDIA_PARTS.get(str(part.get("type")))):
                needs.add(flag)
    return needs


def estimate_text_tokens(text: str) -> int:
    """A rough, offline token count: 4 UTF-8 bytes per token."""
    return math.ceil(len(text.encode()) / BYTES_PER_TOKEN)


def estimate_tokens(messages: list[BaseMessage], tools: list[dict] | None = None) -> int:
    """Estimated prompt tokens: message text and tool calls, tool schemas, 4 per message."""
    parts = [message_text(m) for m in messages]
    parts += [json.dumps(calls) for m in messages if (calls := getattr(m, "tool_calls", None))]
    if tools:
        parts.append(json.dumps(tools))
    return sum(estimate_text_tokens(p) for p in parts) + 4 * len(messages)
