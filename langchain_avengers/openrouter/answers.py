"""Whether an HTTP 200 chat-completion answer is a usable answer, and why not.

OpenRouter answers some failures with status 200: an error object (``{"error": {"code":
502, ...}}``) where the completion should be, ``"choices": []``, a choice that ended in
``finish_reason: "error"``, or, from a proxy or gateway on the way, an HTML page. A stream
can carry the same faults: no event at all (the body was not an event stream) or only
events without choices. Each stands for the HTTP failure it hides, so the chat model and
calibration both turn it into a :class:`~langchain_avengers.openrouter.errors.ProviderError`
that is retried and falls back like that failure.
"""

from __future__ import annotations

from typing import Any

from langchain_avengers.openrouter.errors import _as_status, _field

__all__ = ["NOT_JSON", "NO_ANSWER_EVENTS", "Unusable", "body_excerpt", "unusable_answer"]

EXCERPT_CHARS = 80
NO_ANSWER_EVENTS = (
    "the provider answered HTTP 200 without a single answer event (an error object or an "
    "HTML page where the event stream should be, or only events without choices)"
)
"""Why a stream that ended without content, tool call or finish reason is no answer."""
NOT_JSON = "the provider answered HTTP 200 with a body that is not JSON"

Unusable = tuple[str, int | None]
"""Why an answer is unusable, and the HTTP-like status it stands for (``None``: unknown,
treated as a transient failure)."""


def body_excerpt(text: str) -> str:
    """The start of a body on one line, for an error message."""
    return " ".join(text.split())[:EXCERPT_CHARS]


def unusable_answer(body: object) -> Unusable | None:
    """Why a parsed HTTP 200 chat-completion body is no answer, or ``None`` if it is one.

    Args:
        body: The parsed body (a dict or the ``openai`` SDK's object), or the raw text the
            SDK hands back when the body was not labelled as JSON.
    """
    if isinstance(body, (str, bytes)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return f"{NOT_JSON} ({body_excerpt(text)!r})", None
    error = _field(body, "error")
    if error:
        message = _field(error, "message")
        status = _as_status(_field(error, "code"))
        return f"the provider answered HTTP 200 with an error: {message or error}", status
    choices: Any = _field(body, "choices")
    if not choices:
        return "the provider answered with no choices (an empty completion)", None
    if _field(choices[0], "finish_reason") == "error":
        return "the provider's answer ended with finish_reason 'error'", None
    return None
