"""OpenRouter specifics: a ChatOpenAI that keeps streamed cost, failure classes, call costs."""

from __future__ import annotations

import json
import math
from typing import Any

import openai
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI

from langchain_avengers.catalog import OpenRouterProfile, list_price_cost

NO_ENDPOINT = "No endpoints found that support"
"""Start of OpenRouter's 404 when no provider of a model serves a feature (tool use, images...)."""
BYTES_PER_TOKEN = 4


class OpenRouterChatOpenAI(ChatOpenAI):
    """ChatOpenAI that keeps OpenRouter's ``usage.cost`` on the streamed usage chunk.

    ChatOpenAI maps a streamed ``usage`` to ``usage_metadata`` and drops ``cost``; the router
    needs it to report what a streamed call really cost.
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


def is_retryable(error: BaseException) -> bool:
    """Provider failures worth trying on another model.

    429, 5xx, timeouts, and OpenRouter's 404 when no provider of the model serves the
    request's tools or input kinds.
    """
    if isinstance(
        error,
        (
            openai.RateLimitError,
            openai.InternalServerError,
            openai.APITimeoutError,
            openai.APIConnectionError,
        ),
    ):
        return True
    if isinstance(error, openai.APIStatusError):
        if error.status_code >= 500:
            return True
        return error.status_code == 404 and NO_ENDPOINT in str(error)
    return False


def describe_failure(model: str, error: BaseException) -> dict[str, Any]:
    """What to record about a failed attempt: no request, headers or key, just the error."""
    status = getattr(error, "status_code", None)
    message = getattr(error, "message", None) or str(error)
    return {"model": model, "error": type(error).__name__, "status": status, "message": message}


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


def call_cost(
    message: AIMessage | None,
    openrouter_cost: float | None,
    profile: OpenRouterProfile | None,
) -> tuple[float | None, str | None]:
    """USD of one answer and where the figure comes from.

    OpenRouter's own ``usage.cost`` when present ("openrouter"), else tokens times the
    profile's list prices ("list_prices"), else unknown.
    """
    if openrouter_cost is not None:
        return float(openrouter_cost), "openrouter"
    usage = message.usage_metadata if message is not None else None
    if usage and profile:
        cost = list_price_cost(profile, usage["input_tokens"], usage["output_tokens"])
        if cost is not None:
            return cost, "list_prices"
    return None, None
