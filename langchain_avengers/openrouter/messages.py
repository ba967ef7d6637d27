"""What a request needs from a model, read from its messages: text, media kinds, token estimates."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

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


MAX_SCHEMA_DEPTH = 100
"""Deepest nesting of a tool schema sent (objects and arrays): far above what providers
accept (OpenAI's structured outputs allow 10 levels), far below Python's recursion limit."""


def check_sendable(messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None) -> None:
    r"""Refuse, before any request, what cannot be encoded into a request body.

    A lone surrogate (``"\ud800"``, e.g. from text cut inside an emoji's UTF-16 pair) is not
    valid UTF-8, so the HTTP client would fail with a bare ``UnicodeEncodeError``; a tool
    schema nested hundreds of levels deep makes JSON encoding hit Python's recursion limit.

    Raises:
        ValueError: naming the message (its index and type) and the character's position,
            or the tool and its depth.
    """
    for index, message in enumerate(messages):
        for where, text in _strings(message.content, "content"):
            _check_utf8(text, f"messages[{index}] ({message.type}) {where}")
        for call in getattr(message, "tool_calls", None) or []:
            for where, text in _strings(call.get("args"), f"tool call {call.get('name')!r}"):
                _check_utf8(text, f"messages[{index}] ({message.type}) {where}")
    for position, tool in enumerate(tools or []):
        name = _tool_name(tool) or f"tools[{position}]"
        depth = _depth(tool)
        if depth > MAX_SCHEMA_DEPTH:
            msg = (
                f"tool {name!r}: its schema is nested more than {MAX_SCHEMA_DEPTH} levels deep; "
                "no provider accepts such a schema (flatten it)"
            )
            raise ValueError(msg)
        for where, text in _strings(tool, "schema"):
            _check_utf8(text, f"tool {name!r} {where}")


def _check_utf8(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        msg = (
            f"{where}: character {error.start} is a lone surrogate "
            f"({text[error.start]!r}), which is not valid UTF-8 text and cannot be sent; "
            "repair the text (e.g. decode it with errors='replace')"
        )
        raise ValueError(msg) from None


def _strings(value: object, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON-like value (keys too), with where it is.

    Depth-first without recursion: a deep value must not exhaust the stack here either.
    """
    stack: list[tuple[object, str]] = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            yield at, item
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                stack.append((key, at))
                stack.append((inner, f"{at}.{key}" if isinstance(key, str) else at))
        elif isinstance(item, (list, tuple)):
            stack.extend((inner, f"{at}[{i}]") for i, inner in enumerate(item))


def _depth(value: object) -> int:
    """How deeply objects and arrays nest in a JSON-like value (without recursion)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Iterable[object] = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_SCHEMA_DEPTH:
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _tool_name(tool: object) -> str | None:
    if isinstance(tool, Mapping):
        function = tool.get("function")
        name = function.get("name") if isinstance(function, Mapping) else tool.get("name")
        return name if isinstance(name, str) else None
    return getattr(tool, "name", None)
