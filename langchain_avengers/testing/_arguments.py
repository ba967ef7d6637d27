"""Tool-call and JSON arguments the offline OpenRouter makes up for a JSON schema.

Values are lifted from the user's text (numbers, quoted strings, proper names) in order, and
fall back to defaults, format examples or a label echoing the request; every value is valid
for its schema (enums, unions, bounds, lengths, ``$ref``).
Part of the offline OpenRouter (``langchain_avengers.testing``); stdlib only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from langchain_avengers.testing._messages import snippet
from langchain_avengers.testing._models import JsonDict

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
    """A value valid for ``schema``.

    Enums take their first member, unions their first non-null branch, objects and arrays
    recurse, and every declared property (required or not) is filled.
    """
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
