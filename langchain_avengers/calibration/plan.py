"""What a calibration run will do: its pairs, shard, judges, worst cases and cost estimate."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_avengers.calibration.graders import judge_messages, judge_prompt_bytes_bound
from langchain_avengers.calibration.queries import JudgeGrader, Query, QueryFileError
from langchain_avengers.calibration.spend import (
    DEFAULT_OUTPUT_TOKENS,
    CallBound,
    assumed_output_tokens,
    estimated_prompt_tokens,
    prompt_tokens_bound,
    tokens_bound,
    worst_case_cost,
)
from langchain_avengers.calibration.store import JournalRef, PairKey
from langchain_avengers.catalog.base import Catalog, list_price_cost

__all__ = ["CalibrationPlan", "ModelEstimate", "Shard", "SpendEstimate"]

DEFAULT_MAX_TOKENS = 4096


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based): the pairs whose stable hash falls on it."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` with 0 <= K < N, e.g. ``"0/4"`` ... ``"3/4"``."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            msg = f"shard: expected K/N such as 0/4, got {text!r}"
            raise ValueError(msg) from None
        if count < 1 or not 0 <= index < count:
            msg = f"shard: expected 0 <= K < N in K/N, got {text!r}"
            raise ValueError(msg)
        return cls(index, count)

    def holds(self, key: str, model: str) -> bool:
        """Whether the (query, model) pair belongs to this shard (same on every machine)."""
        digest = hashlib.sha256(f"{key}\n{model}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class CalibrationPlan:
    """The queries x models of one run, with the catalog profiles its costs come from."""

    queries: Sequence[Query]
    models: Sequence[str]
    output: Path
    catalog: Catalog
    max_tokens: int = DEFAULT_MAX_TOKENS
    judge_model: str | None = None
    shard: Shard | None = None
    profiles: dict[str, Any] = field(default_factory=dict)
    needs_judges: bool = True
    """Refuse a judge-graded query without a judge model (off: a regrade that calls no judge)."""

    def __post_init__(self) -> None:
        if not self.models:
            msg = "models: expected at least one model id"
            raise ValueError(msg)
        repeated = sorted({m for m in self.models if list(self.models).count(m) > 1})
        if repeated:
            msg = f"models: {', '.join(repeated)} given twice"
            raise ValueError(msg)
        for query in self.queries:
            judged = isinstance(query.grader, JudgeGrader)
            if judged and self.needs_judges and self.judge_of(query) is None:
                msg = (
                    f"{query.where}: the judge grader needs a judge model: set "
                    "'judge_model' in its grader or pass --judge-model"
                )
                raise QueryFileError(msg)
        for model in [*self.models, *self.judge_models()]:
            self.profiles.setdefault(model, self.catalog.get(model))

    # ------------------------------------------------------------------ pairs

    def pairs(self) -> Iterator[tuple[Query, str]]:
        """This run's (query, model) pairs, query by query."""
        for query in self.queries:
            for model in self.models:
                if self.shard is None or self.shard.holds(query.key, model):
                    yield query, model

    def pending(self, journal: Mapping[PairKey, JournalRef]) -> Iterator[tuple[Query, str]]:
        """Pairs without a current graded journal entry (new, failed, ungraded or changed)."""
        for query, model in self.pairs():
            entry = journal.get((query.key, model))
            if entry is None or not entry.is_done(query):
                yield query, model

    @staticmethod
    def saved_answer(ref: JournalRef | None, query: Query) -> bool:
        """Whether a pending pair has a paid answer to grade (ungraded, same prompt).

        Such a pair is graded again (a judge call at most), never asked again.
        """
        return ref is not None and not ref.graded and ref.prompt_fp == query.prompt_fingerprint

    def judge_of(self, query: Query) -> str | None:
        """The judge model of a judge-graded query (its own, else the run's); else None."""
        if not isinstance(query.grader, JudgeGrader):
            return None
        return query.grader.judge_model or self.judge_model

    def judge_models(self) -> list[str]:
        """Every judge model the queries need."""
        return list(dict.fromkeys(j for q in self.queries if (j := self.judge_of(q))))

    def unpriced_models(self) -> list[str]:
        """Models (answering or judging) the catalog has no list prices for."""
        return [m for m, p in self.profiles.items() if list_price_cost(p, 0, 0) is None]

    # ------------------------------------------------------------------ costs

    def call_bounds(self, query: Query, model: str, attempts: int) -> list[CallBound]:
        """The worst case of each call of a pair (the answer, and its judge if any)."""
        prompt = prompt_tokens_bound(query.messages())
        bounds = [self._bound(model, prompt, attempts)]
        judge = self.judge_of(query)
        if judge is not None:
            content = judge_prompt_bytes_bound(query, query.grader)  # type: ignore[arg-type]
            bounds.append(self._bound(judge, tokens_bound(content, n_messages=2), attempts))
        return bounds

    def _bound(self, model: str, prompt: int, attempts: int) -> CallBound:
        listed = worst_case_cost(self.profiles.get(model), prompt, self.max_tokens, attempts)
        return CallBound(model, listed, prompt, self.max_tokens, attempts)

    def worst_answer(self, query: Query, model: str, attempts: int) -> float:
        """Upper bound in USD of an answer over ``attempts`` billed attempts."""
        bound = prompt_tokens_bound(query.messages())
        return worst_case_cost(self.profiles[model], bound, self.max_tokens, attempts) or 0.0

    def worst_judge(self, query: Query, attempts: int) -> float:
        """Upper bound in USD of judging any answer to ``query`` (0 if not judge-graded)."""
        judge = self.judge_of(query)
        if judge is None:
            return 0.0
        content = judge_prompt_bytes_bound(query, query.grader)  # type: ignore[arg-type]
        bound = tokens_bound(content, n_messages=2)
        return worst_case_cost(self.profiles[judge], bound, self.max_tokens, attempts) or 0.0

    def estimate(
        self, journal: Mapping[PairKey, JournalRef], output_tokens: int | None = None
    ) -> SpendEstimate:
        """Expected and worst-case cost of the pending pairs (see :class:`SpendEstimate`)."""
        answers: dict[str, ModelEstimate] = {}
        judges: dict[str, ModelEstimate] = {}
        done = 0
        total = 0
        for query, model in self.pairs():
            total += 1
            entry = journal.get((query.key, model))
            if entry is not None and entry.is_done(query):
                done += 1
                continue
            row = answers.get(model) or self._estimate_row(model, output_tokens)
            if not self.saved_answer(entry, query):  # else only the judge is asked again
                answers[model] = row
                row.add(
                    estimated_prompt_tokens(query.messages()), self.worst_answer(query, model, 1)
                )
            judge = self.judge_of(query)
            if judge is not None:
                # The judge reads the visible answer only, never hidden reasoning tokens.
                said = "x" * 4 * min(row.output_tokens, DEFAULT_OUTPUT_TOKENS)
                judged = judge_messages(query, said, query.grader)  # type: ignore[arg-type]
                judge_row = judges.setdefault(judge, self._estimate_row(judge, output_tokens))
                judge_row.add(estimated_prompt_tokens(judged), self.worst_judge(query, 1))
        return SpendEstimate(
            answers=list(answers.values()),
            judges=list(judges.values()),
            pairs=total,
            already_done=done,
            max_tokens=self.max_tokens,
            unknown={
                m: self.catalog.nearest(m)
                for m in [*answers, *judges]
                if m not in self.catalog and not self.profiles.get(m)
            },
        )

    def _estimate_row(self, model: str, output_tokens: int | None) -> ModelEstimate:
        profile = self.profiles[model]
        assumed = output_tokens or assumed_output_tokens(profile, self.max_tokens)
        return ModelEstimate(model=model, profile=profile, output_tokens=assumed)


@dataclass
class ModelEstimate:
    """Pending calls of one model: how many, expected tokens and cost, worst case."""

    model: str
    profile: Mapping[str, Any] | None
    output_tokens: int
    """Assumed output tokens per call."""
    calls: int = 0
    prompt_tokens: int = 0
    worst: float = 0.0

    def add(self, prompt_tokens: int, worst: float) -> None:
        """Count one more call."""
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.worst += worst

    @property
    def cost(self) -> float | None:
        """Expected USD at list prices; None without prices."""
        return list_price_cost(self.profile, self.prompt_tokens, self.calls * self.output_tokens)

    def line(self, role: str) -> str:
        """One table row."""
        cost = "no price" if self.cost is None else f"${self.cost:,.4f}"
        worst = "-" if self.cost is None else f"${self.worst:,.4f}"
        return (
            f"| {self.model} | {role} | {self.calls} | {self.prompt_tokens:,} | "
            f"{self.output_tokens:,} | {cost} | {worst} |"
        )


@dataclass
class SpendEstimate:
    """The dry run's answer: what the pending pairs should cost, and at most."""

    answers: list[ModelEstimate]
    judges: list[ModelEstimate]
    pairs: int
    already_done: int
    max_tokens: int
    unknown: dict[str, list[str]] = field(default_factory=dict)
    """Models the catalog does not know, with the nearest ids it knows (a typo shows here)."""

    @property
    def expected(self) -> float:
        """Expected USD over models with prices."""
        return sum(r.cost or 0.0 for r in [*self.answers, *self.judges])

    @property
    def worst(self) -> float:
        """USD if every call used ``max_tokens`` (one attempt each)."""
        return sum(r.worst for r in [*self.answers, *self.judges] if r.cost is not None)

    def table(self) -> str:
        """A Markdown table with the assumptions stated."""
        lines = [
            f"{self.pairs} pairs, {self.already_done} already done, "
            f"{self.pairs - self.already_done} to run.",
            "",
            "| model | role | calls | est. prompt tokens | assumed output tokens / call "
            "| est. cost | worst case |",
            "|---|---|---|---|---|---|---|",
            *(r.line("answers") for r in self.answers),
            *(r.line("judge") for r in self.judges),
            "",
            f"Estimated total ${self.expected:,.4f}; at most ${self.worst:,.4f} if every call "
            f"used --max-tokens {self.max_tokens} (one attempt each).",
            "Prompt tokens: 4 UTF-8 bytes a token plus 4 a message. Output tokens assumed: 400 "
            "a call, 2,000 for reasoning models (they bill hidden reasoning tokens), never above "
            "--max-tokens; --assume-output-tokens sets another figure. Prices: catalog list "
            "prices.",
        ]
        unpriced = [r.model for r in [*self.answers, *self.judges] if r.cost is None]
        if unpriced:
            lines.append(f"No list price (left out of the totals): {', '.join(unpriced)}.")
        for model, nearest in self.unknown.items():
            hint = ", ".join(nearest) or "none"
            lines.append(f"Unknown to the catalog: {model} (nearest known: {hint}).")
        return "\n".join(lines)
