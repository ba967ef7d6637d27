"""A local, deterministic OpenRouter-compatible server for offline tests.

OpenRouter is not reachable from the test machines, so this stdlib-only server
speaks its wire format instead: ``POST /api/v1/chat/completions`` (plain JSON
and SSE streaming, tool calls, JSON modes, usage with ``cost``, the 404 "No
endpoints found that support image input" for media a model does not accept) and
``GET /api/v1/models``. Answers come from a small rule-based "brain" and are a
pure function of the request body, so recorded cassettes replay byte for byte.

In tests::

    with serve() as server:
        llm = ChatOpenAI(model="google/gemini-2.5-flash", base_url=server.base_url,
                         api_key="test-key")
        server.config.fail_models["google/gemini-2.5-flash"] = 429

By hand: ``python tests/openrouter_server.py --port 8765`` (add ``--answer-key QUERIES.jsonl``
to answer a calibration query file with per-model skill).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, cast

import calibration_brain
from background_http import serving
from calibration_brain import AnswerSpec

HOST = "127.0.0.1"
API_PREFIXES = ("/api/v1", "/v1")
NO_TOOL_ENDPOINTS = "No endpoints found that support tool use."
MEDIA_PARTS = {"image_url": "image", "file": "file", "input_audio": "audio", "video_url": "video"}
"""Chat Completions content-part type -> the input modality it needs."""
JsonDict = dict[str, Any]

# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class ModelInfo:
    """One model the server knows, priced like OpenRouter's list (USD per 1M tokens)."""

    id: str
    name: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    context_length: int
    input_modalities: frozenset[str] = frozenset({"text"})
    """What ``architecture.input_modalities`` lists ("text", "image", "file", "audio"...)."""

    @property
    def provider(self) -> str:
        """Provider name as OpenRouter reports it in responses, e.g. "Google"."""
        return self.name.split(":", 1)[0]


MODELS_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "openrouter_models_api.json"
"""``GET /models`` answer in OpenRouter's format (``fixtures/make_models_api.py``)."""
TOOL_PARAMETERS = ("tools", "tool_choice")


def load_model_entries() -> list[JsonDict]:
    """The fixture's model entries, as OpenRouter lists them."""
    return cast(list[JsonDict], json.loads(MODELS_FIXTURE.read_text())["data"])


def model_info(entry: JsonDict) -> ModelInfo:
    """Server-side view of one listed model: its name, per-million prices and context."""
    pricing = entry["pricing"]
    return ModelInfo(
        id=entry["id"],
        name=entry["name"],
        input_usd_per_mtok=max(Decimal(pricing["prompt"]), Decimal(0)) * 1_000_000,
        output_usd_per_mtok=max(Decimal(pricing["completion"]), Decimal(0)) * 1_000_000,
        context_length=int(entry["context_length"]),
        input_modalities=frozenset(entry["architecture"]["input_modalities"]),
    )


MODEL_ENTRIES = load_model_entries()
MODELS: dict[str, ModelInfo] = {e["id"]: model_info(e) for e in MODEL_ENTRIES}
REASONING_MODELS = {e["id"] for e in MODEL_ENTRIES if "reasoning" in e["supported_parameters"]}


def models_payload(config: ServerConfig) -> JsonDict:
    """The ``GET /models`` body; models in ``no_tool_models`` do not list tools."""
    data = []
    for entry in MODEL_ENTRIES:
        params = entry["supported_parameters"]
        if entry["id"] in config.no_tool_models:
            params = [p for p in params if p not in TOOL_PARAMETERS]
        data.append({**entry, "supported_parameters": params})
    return {"data": data}


# --------------------------------------------------------------------------- config and state


@dataclass
class ServerConfig:
    """Failure injection; mutate it on ``TestServer.config`` between requests."""

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
    answer_key: dict[str, AnswerSpec] = field(default_factory=dict)
    """Query text -> kind, correct and wrong answer: models then answer with per-model
    skill (``calibration_brain``); reasoning models bill reasoning tokens."""
    skill: dict[str, dict[str, float]] = field(default_factory=dict)
    """Model -> kind -> probability of a correct answer, over ``calibration_brain``'s
    defaults."""
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


@dataclass
class TestServer:
    """Handle on a running server: its URL, live config and the requests it got."""

    __test__: ClassVar[bool] = False  # not a pytest test class despite the name

    config: ServerConfig = field(default_factory=ServerConfig)
    requests: list[JsonDict] = field(default_factory=list)
    model_list_auth: list[str | None] = field(default_factory=list)
    """The ``Authorization`` header of every ``GET /models`` (None when absent)."""
    port: int = 0
    verbose: bool = False
    peak_in_flight: dict[str, int] = field(default_factory=dict)
    """Most chat requests handled at once: per model, and over all models under ``"*"``."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _in_flight: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def base_url(self) -> str:
        """OpenAI-client ``base_url``, e.g. ``http://127.0.0.1:PORT/api/v1``."""
        return f"http://{HOST}:{self.port}/api/v1"

    def record(self, body: JsonDict) -> None:
        """Keep a parsed request body (handler threads call this concurrently)."""
        with self._lock:
            self.requests.append(body)
            self._in_flight[threading.get_ident()] = model = str(body.get("model"))
            busy = list(self._in_flight.values())
            for name, count in ((model, busy.count(model)), ("*", len(busy))):
                self.peak_in_flight[name] = max(self.peak_in_flight.get(name, 0), count)

    def release(self) -> None:
        """The calling handler thread has answered its recorded request."""
        with self._lock:
            self._in_flight.pop(threading.get_ident(), None)

    def record_model_list(self, authorization: str | None) -> None:
        """Note one ``GET /models`` and the ``Authorization`` header it came with."""
        with self._lock:
            self.model_list_auth.append(authorization)

    def models_called(self) -> list[str]:
        """The ``model`` of every recorded chat request, in arrival order."""
        with self._lock:
            return [str(body.get("model")) for body in self.requests]

    def take_failure(self, model_id: str) -> ApiError | None:
        """The next ``fail_next`` failure of ``model_id``, if any (consumed)."""
        with self._lock:
            pending = self.config.fail_next.get(model_id)
            if not pending:
                return None
            status = pending.pop(0)
        headers = {"retry-after": self.config.retry_after} if self.config.retry_after else None
        reason = FAILURE_REASONS.get(status, "Injected failure")
        return ApiError(status, f"{reason} (model {model_id})", headers)

    def reset(self) -> None:
        """Forget recorded requests and go back to the default (no-failure) config."""
        with self._lock:
            self.requests.clear()
            self.model_list_auth.clear()
            self.peak_in_flight.clear()
        self.config = ServerConfig()


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


def validate_chat_request(body: object, config: ServerConfig) -> tuple[JsonDict, ModelInfo]:
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


# --------------------------------------------------------------------------- message helpers


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


# --------------------------------------------------------------------------- argument synthesis

NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)")
QUOTED_RE = re.compile(r"(?<!\w)'([^'\n]+)'(?!\w)|\"([^\"\n]+)\"|“([^”\n]+)”")
CAPITALISED_RE = re.compile(r"[A-Z][\w'-]*(?:(?:\s+|,\s*)[A-Z][\w'-]*)*")
SENTENCE_START_RE = re.compile(r"(?:^|[.!?:]\s+|\n\s*)$")
FORMAT_EXAMPLES = {
    "date": "2025-01-01",
    "date-time": "2025-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def quoted_strings(text: str) -> list[str]:
    """Strings the user put in quotes, in order: the likeliest literal arguments."""
    return [next(g for g in match.groups() if g) for match in QUOTED_RE.finditer(text)]


def proper_names(text: str) -> list[str]:
    """Capitalised phrases ("San Francisco, CA", "Pirate"), minus lone sentence openers."""
    names = []
    for match in CAPITALISED_RE.finditer(text):
        phrase = match.group(0)
        opener = SENTENCE_START_RE.search(text[: match.start()]) is not None
        if len(phrase) > 1 and not (opener and " " not in phrase):
            names.append(phrase)
    return names


@dataclass
class ArgumentSource:
    """Values lifted from the user's text, handed out in order as fields need them."""

    text: str
    numbers: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)

    @classmethod
    def from_text(cls, text: str) -> ArgumentSource:
        """Collect numbers, quoted strings and then proper names from ``text``."""
        return cls(text, NUMBER_RE.findall(text), quoted_strings(text) + proper_names(text))

    def next_number(self) -> str | None:
        """The next unused number in the text, as written."""
        return self.numbers.pop(0) if self.numbers else None

    def next_string(self) -> str | None:
        """The next unused quoted string or proper name."""
        return self.strings.pop(0) if self.strings else None


def resolve_ref(schema: JsonDict, defs: JsonDict) -> JsonDict:
    """Follow a local ``$ref`` (``#/$defs/X`` or ``#/definitions/X``)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        name = ref.rsplit("/", 1)[-1]
        target = defs.get(name)
        if isinstance(target, dict):
            return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def schema_kind(schema: JsonDict) -> str:
    """The JSON type a schema asks for, inferring it when ``type`` is missing."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def clamp_number(value: float, schema: JsonDict, integer: bool) -> float:
    """Pull ``value`` inside the schema's (exclusive) bounds."""
    step = 1 if integer else 0.5
    low = schema.get("minimum")
    high = schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        low = schema["exclusiveMinimum"] + step
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        high = schema["exclusiveMaximum"] - step
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    return value


def synth_number(schema: JsonDict, source: ArgumentSource, integer: bool) -> int | float:
    """Next number from the text, else the default, kept within bounds."""
    raw = source.next_number()
    default = schema.get("default")
    if raw is not None:
        value = float(raw)
    elif isinstance(default, (int, float)):
        value = float(default)
    else:
        value = 0.0
    value = clamp_number(value, schema, integer)
    return int(value) if integer else value


def synth_string(schema: JsonDict, name: str, source: ArgumentSource) -> str:
    """A format example, else a lifted string, else a label echoing the request."""
    value = FORMAT_EXAMPLES.get(str(schema.get("format")))
    if value is None:
        value = source.next_string() or f"{name.replace('_', ' ')}: {snippet(source.text, 80)}"
    max_length = schema.get("maxLength")
    if isinstance(max_length, int):
        value = value[:max_length]
    min_length = schema.get("minLength")
    if isinstance(min_length, int):
        value = value.ljust(min_length, "x")
    return value


def synth_value(
    schema: object, name: str, source: ArgumentSource, defs: JsonDict, depth: int = 0
) -> Any:
    """A value valid for ``schema``: enums take their first member, unions their
    first non-null branch, objects and arrays recurse, and every declared
    property (required or not) is filled."""
    if not isinstance(schema, dict):
        return synth_string({}, name, source)
    schema = resolve_ref(schema, defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if isinstance(o, dict)]
        if options:
            chosen = next((o for o in options if o.get("type") != "null"), options[0])
            return synth_value(chosen, name, source, defs, depth)
    kind = schema_kind(schema)
    if kind == "object":
        if depth > 6:
            return {}
        properties = schema.get("properties") or {}
        return {
            key: synth_value(sub, key, source, defs, depth + 1) for key, sub in properties.items()
        }
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1))) if depth <= 6 else 0
        return [
            synth_value(schema.get("items", {}), name, source, defs, depth + 1)
            for _ in range(count)
        ]
    if kind in ("integer", "number"):
        return synth_number(schema, source, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return synth_string(schema, name, source)


def synth_for_schema(schema: object, source: ArgumentSource) -> Any:
    """Top-level synthesis: ``$defs``/``definitions`` resolve against the root."""
    root = schema if isinstance(schema, dict) else {}
    defs = {**root.get("definitions", {}), **root.get("$defs", {})}
    return synth_value(root, "value", source, defs)


# --------------------------------------------------------------------------- the brain


@dataclass(frozen=True)
class ToolCall:
    """One function call the assistant makes."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """What the assistant says: text, or tool calls (``content`` is then None)."""

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    reasoning_tokens: int = 0
    """Hidden reasoning billed as completion tokens (answer-key replies of reasoning models)."""

    def completion_text(self) -> str:
        """Text the completion-token estimate is based on."""
        calls = "".join(call.name + call.arguments for call in self.tool_calls)
        return (self.content or "") + calls


def request_digest(body: JsonDict) -> str:
    """Stable hash of the request: the seed for ids and timestamps."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def function_tools(body: JsonDict) -> list[JsonDict]:
    """The ``function`` objects of the request's tools."""
    tools = body.get("tools") or []
    return [
        t["function"] for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]


def forced_tool_name(tool_choice: object) -> str | None:
    """The function name a ``{"type": "function", ...}`` tool_choice forces."""
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
        return str(name) if name else None
    return None


def mentioned_tools(functions: list[JsonDict], text: str) -> list[JsonDict]:
    """Tools named in ``text`` (whole-word, longest name first), in order of mention."""
    by_name = {str(f.get("name", "")).lower(): f for f in functions if f.get("name")}
    if not by_name:
        return []
    names = sorted(by_name, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, names)) + r")(?!\w)", re.IGNORECASE)
    found: list[JsonDict] = []
    for match in pattern.finditer(text):
        function = by_name[match.group(1).lower()]
        if function not in found:
            found.append(function)
    return found


def wants_tool_call(body: JsonDict) -> bool:
    """Call a tool when tools are offered, not disabled, and no tool result is pending."""
    messages = body["messages"]
    return (
        bool(function_tools(body))
        and body.get("tool_choice") != "none"
        and messages[-1].get("role") != "tool"
    )


def choose_tools(body: JsonDict, text: str) -> list[JsonDict]:
    """The forced tool; else every tool the user names (one if parallel calls are
    off); else the first tool."""
    functions = function_tools(body)
    forced = forced_tool_name(body.get("tool_choice"))
    if forced is not None:
        chosen = [f for f in functions if f.get("name") == forced]
        if not chosen:
            raise ApiError(400, f"tool_choice names unknown function {forced!r}")
        return chosen
    mentioned = mentioned_tools(functions, text)
    if not mentioned:
        return functions[:1]
    return mentioned[:1] if body.get("parallel_tool_calls") is False else mentioned


def tool_call_reply(body: JsonDict, digest: str) -> Reply:
    """Call the chosen tools with arguments lifted from the latest user text."""
    text = latest_text(body["messages"])
    source = ArgumentSource.from_text(text)
    calls = []
    for index, function in enumerate(choose_tools(body, text)):
        args = synth_for_schema(function.get("parameters") or {"type": "object"}, source)
        call_id = "call_" + hashlib.sha256(f"{digest}:{index}".encode()).hexdigest()[:24]
        calls.append(ToolCall(call_id, str(function["name"]), json.dumps(args, ensure_ascii=False)))
    return Reply(content=None, tool_calls=tuple(calls), finish_reason="tool_calls")


def tool_results_text(messages: list[JsonDict]) -> str:
    """Sentence(s) reporting the trailing tool results, naming each tool."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            names[str(call.get("id"))] = str(call.get("function", {}).get("name", "tool"))
    trailing: list[JsonDict] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        trailing.insert(0, message)
    sentences = []
    for message in trailing:
        name = message.get("name") or names.get(str(message.get("tool_call_id")), "tool")
        sentences.append(
            f"The {name} tool returned: {snippet(content_text(message.get('content')), 200)}."
        )
    return " ".join(sentences)


def json_reply(response_format: JsonDict, text: str) -> str:
    """JSON content for ``json_schema`` (valid for the schema) or ``json_object``
    (keys are the quoted words in the prompt, e.g. 'setup' and 'punchline')."""
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        value = synth_for_schema(schema, ArgumentSource.from_text(text))
    else:
        keys = quoted_strings(text)
        source = ArgumentSource(text)
        value = (
            {key: synth_string({}, key, source) for key in keys}
            if keys
            else {"response": snippet(text)}
        )
    return json.dumps(value, ensure_ascii=False)


def token_limit(body: JsonDict) -> int | None:
    """``max_completion_tokens`` (what ChatOpenAI sends) or the legacy ``max_tokens``."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    return limit if isinstance(limit, int) and limit > 0 else None


def stop_sequences(stop: object) -> list[str]:
    """The ``stop`` parameter as a list (it may be a string, a list or absent)."""
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str) and s]
    return []


def apply_limits(text: str, stop: object, max_tokens: int | None) -> tuple[str, str]:
    """Cut before the first stop sequence, then to ``max_tokens`` words."""
    cuts = [text.find(s) for s in stop_sequences(stop) if s in text]
    if cuts:
        text = text[: min(cuts)]
    words = text.split()
    if max_tokens is not None and max_tokens < len(words):
        return " ".join(words[:max_tokens]), "length"
    return text, "stop"


def calibration_reply(body: JsonDict, model: ModelInfo, config: ServerConfig) -> Reply | None:
    """The answer to a query of ``config.answer_key`` or to a judge prompt; else None."""
    if body.get("tools") or body.get("response_format"):
        return None
    found = calibration_brain.answer(
        latest_text(body["messages"]),
        model.id,
        reasoning=model.id in REASONING_MODELS,
        answer_key=config.answer_key,
        overrides=config.skill,
    )
    if found is None:
        return None
    content, finish_reason = apply_limits(found[0], body.get("stop"), token_limit(body))
    return Reply(content=content, finish_reason=finish_reason, reasoning_tokens=found[1])


def plan_reply(body: JsonDict, model: ModelInfo, digest: str) -> Reply:
    """Decide the answer: tool call, JSON, tool-result summary or a plain echo."""
    messages = body["messages"]
    if wants_tool_call(body):
        return tool_call_reply(body, digest)
    user_text = latest_text(messages)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in (
        "json_schema",
        "json_object",
    ):
        return Reply(content=json_reply(response_format, user_text or prompt_text(messages)))
    if messages[-1].get("role") == "tool":
        text = tool_results_text(messages)
    elif user_text:
        said = snippet(user_text)
        text = f'Hello! You said: "{said}". This is a deterministic reply from {model.id}.'
    else:
        text = f"Hello! This is a deterministic reply from {model.id}."
    content, finish_reason = apply_limits(text, body.get("stop"), token_limit(body))
    return Reply(content=content, finish_reason=finish_reason)


# --------------------------------------------------------------------------- response bodies


def usage_payload(body: JsonDict, model: ModelInfo, reply: Reply) -> JsonDict:
    """OpenRouter usage: token counts, zeroed details and ``cost`` in USD."""
    prompt_tokens = max(1, estimate_tokens(prompt_text(body["messages"])))
    completion_tokens = estimate_tokens(reply.completion_text()) + reply.reasoning_tokens
    limit = token_limit(body)
    if limit is not None:
        completion_tokens = min(completion_tokens, limit)
    cost = (
        prompt_tokens * model.input_usd_per_mtok + completion_tokens * model.output_usd_per_mtok
    ) / 1_000_000
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "cost": float(cost),
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": min(reply.reasoning_tokens, completion_tokens),
            "image_tokens": 0,
        },
    }


def envelope(model: ModelInfo, digest: str, obj: str) -> JsonDict:
    """Fields every completion (chunk) carries; id and created come from the hash."""
    created = 1_700_000_000 + int(digest[:8], 16) % 100_000_000
    return {
        "id": f"gen-{created}-{digest[8:28]}",
        "provider": model.provider,
        "model": model.id,
        "object": obj,
        "created": created,
    }


def tool_calls_payload(reply: Reply) -> list[JsonDict]:
    """Tool calls in the Chat Completions message format."""
    return [
        {
            "id": c.id,
            "type": "function",
            "index": i,
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for i, c in enumerate(reply.tool_calls)
    ]


def completion_payload(body: JsonDict, model: ModelInfo, reply: Reply, digest: str) -> JsonDict:
    """The non-streaming ``chat.completion`` body."""
    message: JsonDict = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = tool_calls_payload(reply)
    choice = {
        "index": 0,
        "logprobs": None,
        "finish_reason": reply.finish_reason,
        "native_finish_reason": reply.finish_reason,
        "message": message,
    }
    return {
        **envelope(model, digest, "chat.completion"),
        "choices": [choice],
        "usage": usage_payload(body, model, reply),
    }


def split_pieces(text: str, words_per_piece: int = 3) -> list[str]:
    """Split text into a few streaming deltas that concatenate back to it."""
    words = re.split(r"(?<=\s)(?=\S)", text)
    return [
        "".join(words[i : i + words_per_piece]) for i in range(0, len(words), words_per_piece)
    ] or [""]


def stream_chunks(body: JsonDict, model: ModelInfo, reply: Reply, digest: str) -> list[JsonDict]:
    """The ``chat.completion.chunk`` sequence: role, deltas, finish, then usage."""
    base = envelope(model, digest, "chat.completion.chunk")

    def chunk(delta: JsonDict, finish_reason: str | None = None) -> JsonDict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        if finish_reason:
            choice["native_finish_reason"] = finish_reason
        return {**base, "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    for index, call in enumerate(reply.tool_calls):
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        for start in range(0, len(call.arguments), 8):
            fragment = {
                "index": index,
                "function": {"arguments": call.arguments[start : start + 8]},
            }
            chunks.append(chunk({"tool_calls": [fragment]}))
    if not reply.tool_calls:
        chunks += [chunk({"content": piece}) for piece in split_pieces(reply.content or "")]
    chunks.append(chunk({}, reply.finish_reason))
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": usage_payload(body, model, reply)})
    return chunks


def answer_faults(payload: JsonDict, model_id: str, config: ServerConfig) -> JsonDict:
    """One answer (or chunk) with the configured cost omission/override and reported model."""
    if model_id in config.omit_cost_models and isinstance(payload.get("usage"), dict):
        usage = {k: v for k, v in payload["usage"].items() if k != "cost"}
        payload = {**payload, "usage": usage}
    if model_id in config.reported_models:
        payload = {**payload, "model": config.reported_models[model_id]}
    if model_id in config.cost_overrides and isinstance(payload.get("usage"), dict):
        payload = {
            **payload,
            "usage": {**payload["usage"], "cost": config.cost_overrides[model_id]},
        }
    return payload


def stream_events(chunks: list[JsonDict], model_id: str, config: ServerConfig) -> list[bytes]:
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


# --------------------------------------------------------------------------- HTTP layer


class OpenRouterHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server bound to 127.0.0.1 that shares one ``TestServer`` state."""

    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once are queued, not dropped

    def __init__(self, port: int, state: TestServer):
        super().__init__((HOST, port), OpenRouterHandler)
        self.state = state
        state.port = self.server_address[1]


class OpenRouterHandler(BaseHTTPRequestHandler):
    """Routes requests; HTTP/1.1 so streams use chunked transfer encoding."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # answer at once instead of waiting on delayed ACKs
    server_version = "openrouter-test-server/1.0"
    timeout = 30.0  # idle keep-alive connections end instead of pinning a thread

    @property
    def state(self) -> TestServer:
        """The shared server state."""
        return cast(OpenRouterHTTPServer, self.server).state

    def log_message(self, format: str, *args: Any) -> None:
        """Log only when verbose (tests stay quiet)."""
        if self.state.verbose:
            super().log_message(format, *args)

    def route(self) -> str:
        """Path below ``/api/v1`` or ``/v1``; "" for anything else."""
        path = self.path.split("?", 1)[0].rstrip("/")
        for prefix in API_PREFIXES:
            if path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return ""

    def do_GET(self) -> None:
        """``GET /models`` (public, like OpenRouter's)."""
        if self.route() == "/models":
            self.state.record_model_list(self.headers.get("Authorization"))
            status = self.state.config.models_status
            if status is None:
                self.send_json(200, models_payload(self.state.config))
            else:
                self.send_api_error(ApiError(status, FAILURE_REASONS.get(status, "Error")))
        else:
            self.send_api_error(ApiError(404, "Not Found"))

    def do_POST(self) -> None:
        """``POST /chat/completions``; a client hanging up mid-answer is not an error."""
        try:
            self.handle_chat()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.state.release()

    def handle_chat(self) -> None:
        """Record, delay, authenticate, validate, then answer or stream."""
        body = self.read_json()
        if isinstance(body, dict):
            self.state.record(body)
        config = self.state.config
        delay = config.delay_s
        if isinstance(body, dict):
            delay += config.model_delay_s.get(str(body.get("model")), 0.0)
        if delay > 0:
            time.sleep(delay)
        try:
            if self.route() != "/chat/completions":
                raise ApiError(404, "Not Found")
            self.check_auth()
            request, model = validate_chat_request(body, config)
            failure = self.state.take_failure(model.id)
            if failure is not None:
                raise failure
            digest = request_digest(request)
            reply = calibration_reply(request, model, config) or plan_reply(request, model, digest)
        except ApiError as err:
            self.send_api_error(err)
            return
        if request.get("stream"):
            abort = model.id in config.stream_fail_after_first_chunk
            chunks = [
                answer_faults(c, model.id, config)
                for c in stream_chunks(request, model, reply, digest)
            ]
            self.send_stream(
                stream_events(chunks, model.id, config), abort_after=2 if abort else None
            )
        elif model.id in config.error_body_models:
            code = config.error_body_models[model.id]
            self.send_json(
                200, ApiError(code, FAILURE_REASONS.get(code, "Provider returned error")).payload()
            )
        else:
            payload = answer_faults(
                completion_payload(request, model, reply, digest), model.id, config
            )
            if model.id in config.empty_choices_models:
                payload["choices"] = []
            self.send_json(200, payload)

    def read_json(self) -> object:
        """The request body parsed as JSON, or None if it is not JSON."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def check_auth(self) -> None:
        """Any non-empty bearer key passes; a missing or empty one is a 401."""
        scheme, _, key = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "No auth credentials found")

    def send_json(
        self, status: int, payload: JsonDict, headers: dict[str, str] | None = None
    ) -> None:
        """A complete JSON response with Content-Length (keeps the connection reusable)."""
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_api_error(self, err: ApiError) -> None:
        """An OpenRouter-style error response."""
        self.send_json(err.status, err.payload(), err.headers)

    def send_stream(self, events: list[bytes], abort_after: int | None) -> None:
        """SSE over chunked encoding; with ``abort_after`` the connection drops without
        the final zero-length chunk, which HTTP clients report as a broken body."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.write_chunk(b": OPENROUTER PROCESSING\n\n")
        for index, event in enumerate(events):
            if index == abort_after:
                self.close_connection = True
                return
            self.write_chunk(b"data: " + event + b"\n\n")
        self.write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def write_chunk(self, data: bytes) -> None:
        """One HTTP/1.1 chunk, flushed so the client sees it immediately."""
        self.wfile.write(f"{len(data):X}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()


# --------------------------------------------------------------------------- entry points


@contextmanager
def serve(port: int = 0, *, config: ServerConfig | None = None) -> Iterator[TestServer]:
    """Run the server in a background thread for the ``with`` block (port 0 = any free port)."""
    state = TestServer(config=config or ServerConfig())
    httpd = OpenRouterHTTPServer(port, state)
    with serving(httpd, name=f"openrouter-test-server:{state.port}"):
        yield state


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Local OpenRouter-compatible test server")
    parser.add_argument(
        "--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    parser.add_argument(
        "--answer-key",
        type=Path,
        help="a query file of `avengers calibrate`: answer its queries with per-model skill",
    )
    args = parser.parse_args(argv)
    state = TestServer(verbose=not args.quiet)
    if args.answer_key:
        state.config.answer_key = calibration_brain.load_answer_key(args.answer_key)
    httpd = OpenRouterHTTPServer(args.port, state)
    print(f"OpenRouter test server at {state.base_url} (Ctrl-C to stop)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
