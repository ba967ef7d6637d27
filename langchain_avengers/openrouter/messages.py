"""What a request needs from a model, read from its messages: text, media kinds, token estimates."""

from __future__ import annotations

import json
import math

from langchain_core.messages import BaseMessage

BYTES_PER_TOKEN = 4


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
