"""Reading Chat Completions messages in the offline OpenRouter.

The text of a message's content, the latest user text, everything the model "reads" (for the
prompt-token estimate) and a short one-line snippet for echoing back.
Part of the offline OpenRouter (``langchain_avengers.testing``); stdlib only.
"""

from __future__ import annotations

import math

from langchain_avengers.testing._models import JsonDict


def content_text(content: object) -> str:
    """Text of a message ``content``: a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict):
            kind = part.get("type", "")
            text = part.get("text")
            parts.append(text if isinstance(text, str) else f"[{kind}]")
    return " ".join(p for p in parts if p)


def latest_text(messages: list[JsonDict]) -> str:
    """Text of the last user message ("" if none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def prompt_text(messages: list[JsonDict]) -> str:
    """Everything the model "reads", for the prompt-token estimate."""
    pieces = []
    for message in messages:
        pieces.append(content_text(message.get("content")))
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            pieces.append(f"{function.get('name', '')}{function.get('arguments', '')}")
    return "\n".join(pieces)


def estimate_tokens(text: str) -> int:
    """OpenRouter-ish token estimate: one token per four characters."""
    return math.ceil(len(text) / 4)


def snippet(text: str, limit: int = 120) -> str:
    """One-line, length-capped version of ``text`` for echoing back."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."
