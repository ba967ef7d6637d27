"""Deterministic per-model skill for the offline OpenRouter (calibration runs).

Given an answer key (query text -> kind, a correct and a wrong answer), a model answers a
query correctly iff a stable hash of (model, query) falls under its skill on that kind. Skill
grows with price but not uniformly: each (model, kind) gets a fixed offset of up to +-0.2, so
a router fitted on the records has something to learn. Reasoning models also bill a
deterministic number of reasoning tokens. The judge prompt of ``avengers calibrate`` is
recognised and answered "Score: 10" when the graded answer contains the reference answer.

Stdlib only, like the server; nothing here touches requests without an answer key or judge
markers, so every other answer of the server is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SKILL = {
    "meta-llama/llama-3.1-8b-instruct": 0.45,
    "aion-labs/aion-1.0-mini": 0.55,
    "mistralai/mistral-large-2512": 0.65,
    "qwen/qwen3-235b-a22b-2507": 0.7,
    "google/gemini-2.5-flash": 0.75,
    "google/gemini-2.5-pro": 0.86,
    "anthropic/claude-sonnet-4.5": 0.88,
    "openai/gpt-5": 0.9,
}
"""Base probability of a correct answer; pricier models are more skilled."""
FALLBACK_SKILL = 0.6
KIND_SPREAD = 0.2
JUDGE_MARKERS = ("[Answer to grade]\n", "\n[End of answer]")
REFERENCE_MARKERS = ("[Reference answer]\n", "\n[End of reference answer]")
UNSURE = "I am not sure."


@dataclass(frozen=True)
class AnswerSpec:
    """What the server knows about one labelled query."""

    kind: str
    """Skill is per (model, kind): the query's dataset, else its grader."""
    correct: str
    wrong: str


def unit_hash(*parts: str) -> float:
    """A stable number in [0, 1) from ``parts``."""
    digest = hashlib.sha256("\n".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def skill(model: str, kind: str, overrides: Mapping[str, Mapping[str, float]]) -> float:
    """Probability that ``model`` answers a query of ``kind`` correctly."""
    if kind in overrides.get(model, {}):
        return overrides[model][kind]
    base = DEFAULT_SKILL.get(model, FALLBACK_SKILL)
    offset = (2 * unit_hash("kind", model, kind) - 1) * KIND_SPREAD
    return min(0.98, max(0.05, base + offset))


def reasoning_tokens(model: str, query: str) -> int:
    """Hidden reasoning tokens a reasoning model bills for ``query`` (50-249)."""
    return 50 + int(unit_hash("reasoning", model, query) * 200)


def answer(
    query: str,
    model: str,
    *,
    reasoning: bool,
    answer_key: Mapping[str, AnswerSpec],
    overrides: Mapping[str, Mapping[str, float]],
) -> tuple[str, int] | None:
    """``(content, reasoning tokens)`` for a known query or a judge prompt; None otherwise."""
    verdict = judge_verdict(query)
    if verdict is not None:
        return verdict, 0
    spec = answer_key.get(query)
    if spec is None:
        return None
    right = unit_hash("answer", model, query) < skill(model, spec.kind, overrides)
    return (spec.correct if right else spec.wrong), reasoning_tokens(model, query) * reasoning


def judge_verdict(prompt: str) -> str | None:
    """The verdict on a judge prompt (10 if the answer holds the reference, else 1)."""
    graded = _section(prompt, *JUDGE_MARKERS, last=True)
    reference = _section(prompt, *REFERENCE_MARKERS, last=False)
    if graded is None or reference is None:
        return None
    holds = _normal(reference) in _normal(graded)
    reason = "holds the reference answer" if holds else "misses the reference answer"
    return f"The answer {reason}.\nScore: {10 if holds else 1}"


def _section(text: str, start: str, end: str, *, last: bool) -> str | None:
    """Text between ``start`` and the first (or ``last``) ``end`` after it."""
    _, found, rest = text.partition(start)
    if not found or end not in rest:
        return None
    return rest.rpartition(end)[0] if last else rest.partition(end)[0]


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def answer_key_from_queries(lines: Iterable[Mapping[str, Any]]) -> dict[str, AnswerSpec]:
    """An answer key for query-file lines (``avengers calibrate`` format).

    Correct answers: the reference in the shape its grader reads (a letter sentence, a
    number sentence, a fenced code block); wrong answers: another letter, the number plus
    one, code returning None, or "I am not sure.".
    """
    key = {}
    for line in lines:
        grader = line["grader"] if isinstance(line["grader"], str) else line["grader"]["name"]
        options = line["grader"] if isinstance(line["grader"], dict) else {}
        reference = line.get("reference")
        first = reference[0] if isinstance(reference, list) else reference
        correct, wrong = _answers(grader, first, options)
        key[line["query"]] = AnswerSpec(str(line.get("dataset") or grader), correct, wrong)
    return key


def _answers(grader: str, reference: Any, options: Mapping[str, Any]) -> tuple[str, str]:
    if grader == "choice":
        letters = str(options.get("choices", "ABCD"))
        other = next(c for c in letters if c != str(reference).upper())
        return f"The answer is ({reference}).", f"The answer is ({other})."
    if grader == "numeric":
        value = float(str(reference).replace(",", ""))
        return f"The answer is {reference}.", f"The answer is {value + 1:g}."
    if grader == "python":
        wrong = "```python\ndef solution(*args, **kwargs):\n    return None\n```"
        return f"```python\n{reference}\n```", wrong
    return str(reference), UNSURE


def load_answer_key(path: Path) -> dict[str, AnswerSpec]:
    """:func:`answer_key_from_queries` for a query file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return answer_key_from_queries(json.loads(text) for text in lines if text.strip())
