"""The "brain" of the offline OpenRouter: what the assistant answers.

A pure function of the request body: a tool call with made-up arguments, JSON for a
``response_format``, a summary of tool results, a calibration answer (``_answer_key``)
or a plain echo, cut at stop sequences and ``max_tokens``.
Part of the offline OpenRouter (``langchain_avengers.testing``); stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from langchain_avengers.testing import _answer_key
from langchain_avengers.testing._answer_key import AnswerSpec
from langchain_avengers.testing._arguments import (
    ArgumentSource,
    quoted_strings,
    synth_for_schema,
    synth_string,
)
from langchain_avengers.testing._faults import ApiError
from langchain_avengers.testing._messages import content_text, latest_text, prompt_text, snippet
from langchain_avengers.testing._models import REASONING_MODELS, JsonDict, ModelInfo


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
    """The tools to call.

    The forced tool; else every tool the user names (one if parallel calls are off); else the
    first tool.
    """
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
    """JSON content for a ``response_format``.

    For ``json_schema``, valid for the schema; for ``json_object``, the keys are the quoted words
    in the prompt (e.g. 'setup' and 'punchline').
    """
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


def calibration_reply(
    body: JsonDict,
    model: ModelInfo,
    answer_key: Mapping[str, AnswerSpec],
    skill: Mapping[str, Mapping[str, float]],
    judge_verdict: str | None = None,
) -> Reply | None:
    """The answer to a query of ``answer_key`` or to a judge prompt; else None.

    ``judge_verdict`` replaces every judge verdict (a judge that answers without a score).
    """
    if body.get("tools") or body.get("response_format"):
        return None
    prompt = latest_text(body["messages"])
    found = _answer_key.answer(
        prompt,
        model.id,
        reasoning=model.id in REASONING_MODELS,
        answer_key=answer_key,
        overrides=skill,
    )
    if found is None:
        return None
    if judge_verdict is not None and _answer_key.judge_verdict(prompt) is not None:
        found = (judge_verdict, 0)
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
