"""What the offline OpenRouter rejects and the faults a test injects.

:class:`Faults` is the live, mutable failure injection (failing models, delays, missing
costs, broken streams); :class:`ApiError` is an OpenRouter-style error answer;
:func:`validate_chat_request` rejects what OpenRouter would reject, and :func:`answer_faults` /
:func:`stream_events` bend answers and streams as configured. Stdlib only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from langchain_avengers.testing._models import MODELS, JsonDict, ModelInfo

NO_TOOL_ENDPOINTS = "No endpoints found that support tool use."
MEDIA_PARTS = {"image_url": "image", "file": "file", "input_audio": "audio", "video_url": "video"}
"""Chat Completions content-part type -> the input modality it needs."""


@dataclass
class Faults:
    """What goes wrong, per model: mutate ``server.faults`` between requests.

    Every field starts empty (nothing fails); ``server.reset()`` empties them again.
    """

    fail_models: dict[str, int] = field(default_factory=dict)
    """Model id -> HTTP status every chat request for that model answers with."""
    no_tool_models: set[str] = field(default_factory=set)
    """Models whose requests with ``tools`` get OpenRouter's 404 "no endpoints"."""
    stream_fail_after_first_chunk: set[str] = field(default_factory=set)
    """Models whose streams drop the connection after the first content chunk."""
    delay_s: float = 0.0
    """Seconds to sleep before answering any chat request (for timeout tests)."""
    omit_cost_models: set[str] = field(default_factory=set)
    """Models whose ``usage`` leaves out ``cost`` (clients must price from list prices)."""
    models_status: int | None = None
    """HTTP status ``GET /models`` answers with instead of the model list."""
    fail_next: dict[str, list[int]] = field(default_factory=dict)
    """Model -> HTTP statuses its next chat requests answer with, one request each."""
    model_delay_s: dict[str, float] = field(default_factory=dict)
    """Model id -> extra seconds to sleep before answering (a hung provider for that model)."""
    retry_after: str = "0"
    """``Retry-After`` header of injected 429s and of ``fail_next`` failures."""
    error_body_models: dict[str, int] = field(default_factory=dict)
    """Model id -> code of an error object answered with HTTP 200, as OpenRouter does when
    an upstream provider fails (``{"error": {"message": ..., "code": 502}}``)."""
    empty_choices_models: set[str] = field(default_factory=set)
    """Models whose non-streamed answers are HTTP 200 with ``"choices": []``."""
    stream_error_event_models: set[str] = field(default_factory=set)
    """Models whose streams send an ``error`` event after the role chunk, before any token."""
    stream_malformed_first_event_models: set[str] = field(default_factory=set)
    """Models whose streams start with a data line that is not JSON."""
    cost_overrides: dict[str, Any] = field(default_factory=dict)
    """Model id -> the value sent as ``usage.cost`` instead of the real price (any JSON
    value, NaN and huge numbers included)."""
    reported_models: dict[str, str] = field(default_factory=dict)
    """Model id -> the model id the answers report (a provider-specific variant)."""
    http200_bodies: dict[str, str] = field(default_factory=dict)
    """Model id -> a broken HTTP 200 answer to every request, streamed or not (see
    :data:`BROKEN_200_BODIES`): ``"html"`` (a ``text/html`` page), ``"html_as_json"`` (the
    page labelled ``application/json``), ``"json_error"`` (an error object where a stream
    was asked for) or ``"empty_choices_event"`` (a stream of one ``"choices": []`` event)."""
    price_factor: dict[str, float] = field(default_factory=dict)
    """Model id -> how many times its list price ``usage.cost`` bills (a provider dearer
    than the catalog)."""
    echo_key: bool = False
    """Error answers quote the request's API key (as some proxies do)."""
    models_body: bytes | None = None
    """Raw body ``GET /models`` answers with (``application/json``) instead of the list."""
    models_padding_bytes: int = 0
    """Spaces sent after the ``GET /models`` body, streamed (a huge answer, built lazily)."""
    models_drip_s: float | None = None
    """Send the ``GET /models`` body one byte every this many seconds (a stalled server)."""
    judge_verdict: str | None = None
    """What every judge prompt of ``avengers calibrate`` is answered with, instead of the
    brain's "Score: N" verdict (e.g. a verdict without a score)."""


class ApiError(Exception):
    """An error answered with OpenRouter's ``{"error": {"message", "code"}}`` body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def payload(self) -> JsonDict:
        """The JSON error body."""
        return {"error": {"message": self.message, "code": self.status}}


FAILURE_REASONS = {
    400: "Provider returned error",
    401: "User not found.",
    402: "Insufficient credits",
    403: "Input was flagged by moderation",
    408: "Request timed out",
    429: "Rate limit exceeded, please retry shortly",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "No available provider could serve the request",
}


def injected_failure(status: int, model_id: str, retry_after: str = "0") -> ApiError:
    """The error a ``fail_models`` entry produces; 429 carries ``retry-after`` (default 0)."""
    reason = FAILURE_REASONS.get(status, "Injected failure")
    headers = {"retry-after": retry_after} if status == 429 else None
    return ApiError(status, f"{reason} (model {model_id})", headers)


def validate_chat_request(body: object, config: Faults) -> tuple[JsonDict, ModelInfo]:
    """Reject what OpenRouter would reject, then apply the configured failures."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    model_id = body.get("model")
    if not isinstance(model_id, str) or model_id not in MODELS:
        raise ApiError(400, f"{model_id} is not a valid model ID")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages: expected a non-empty array")
    if model_id in config.fail_models:
        raise injected_failure(config.fail_models[model_id], model_id, config.retry_after)
    if body.get("tools") and model_id in config.no_tool_models:
        raise ApiError(404, NO_TOOL_ENDPOINTS)
    unsupported = media_needed(messages) - MODELS[model_id].input_modalities
    if unsupported:
        kind = min(unsupported, key=list(MEDIA_PARTS.values()).index)
        raise ApiError(404, f"No endpoints found that support {kind} input")
    return body, MODELS[model_id]


def media_needed(messages: list[Any]) -> set[str]:
    """Input modalities the messages' content parts need.

    OpenRouter answers 404 "No endpoints found that support image input" when no provider of
    the model accepts an image; the audio and video messages here follow that wording. PDFs
    OpenRouter parses to text for models without native file input (its file-parser
    plugin); this server refuses them instead, so the router's PDF mask can be tested.
    """
    kinds = set()
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") in MEDIA_PARTS:
                kinds.add(MEDIA_PARTS[part["type"]])
    return kinds


BROKEN_200_BODIES: dict[str, tuple[str, bytes]] = {
    "html": ("text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "html_as_json": ("application/json", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "json_error": (
        "application/json",
        b'{"error": {"message": "Provider returned error", "code": 502}}',
    ),
    "empty_choices_event": (
        "text/event-stream",
        b'data: {"id": "gen-empty", "object": "chat.completion.chunk", "choices": []}\n\n'
        b"data: [DONE]\n\n",
    ),
}
"""``http200_bodies`` kinds -> content type and body of the broken HTTP 200 answer."""


def answer_faults(payload: JsonDict, model_id: str, config: Faults) -> JsonDict:
    """One answer (or chunk) with the configured cost omission/override and reported model."""
    if model_id in config.omit_cost_models and isinstance(payload.get("usage"), dict):
        usage = {k: v for k, v in payload["usage"].items() if k != "cost"}
        payload = {**payload, "usage": usage}
    if model_id in config.reported_models:
        payload = {**payload, "model": config.reported_models[model_id]}
    factor = config.price_factor.get(model_id)
    billed = payload.get("usage")
    if factor is not None and isinstance(billed, dict) and "cost" in billed:
        payload = {**payload, "usage": {**billed, "cost": billed["cost"] * factor}}
    if model_id in config.cost_overrides and isinstance(payload.get("usage"), dict):
        payload = {
            **payload,
            "usage": {**payload["usage"], "cost": config.cost_overrides[model_id]},
        }
    return payload


def stream_events(chunks: list[JsonDict], model_id: str, config: Faults) -> list[bytes]:
    """The SSE ``data`` payloads of a stream, with the configured stream faults."""
    events = [json.dumps(chunk, ensure_ascii=False).encode("utf-8") for chunk in chunks]
    if model_id in config.stream_error_event_models:
        error = {
            **{k: chunks[0][k] for k in ("id", "provider", "model", "object", "created")},
            "error": {"code": 502, "message": FAILURE_REASONS[502]},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }
        events = [events[0], json.dumps(error).encode("utf-8")]
    if model_id in config.stream_malformed_first_event_models:
        events.insert(0, b'{"id": "gen-malformed", "choices": [')
    return events
