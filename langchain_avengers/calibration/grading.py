"""Grading one answer during a run, and what is kept of an answer whose grading failed.

A run asks the model, then grades the answer here: locally (:func:`.graders.grade`, the python
grader in a sandbox thread) or by asking the judge model. The answer is paid for by then, so
a grading failure (:class:`GradingError`) keeps it: the runner journals it ungraded with the
reason and the verdict quoted, and the next run grades it again without asking its model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_avengers.calibration.client import Completion
from langchain_avengers.calibration.graders import (
    grade,
    judge_messages,
    parse_judge_score,
    verdict_excerpt,
)
from langchain_avengers.calibration.queries import PythonGrader, Query
from langchain_avengers.calibration.store import JournalEntry

__all__ = ["AskJudge", "GradingError", "answer_usage", "grade_answer"]

AskJudge = Callable[[str, list[dict[str, str]]], Awaitable[Completion | None]]
"""Ask ``judge`` the messages (counting what it bills); None when the run stopped first.
Raises :class:`GradingError` when the call fails."""


class GradingError(Exception):
    """A pair answered but not graded (an unreadable judge verdict, a grader crash).

    Args:
        reason: What failed, worded alike for every pair that failed alike (summary counts).
        detail: What this pair's judge said (:func:`.graders.verdict_excerpt`), if anything.
    """

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason if detail is None else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


async def grade_answer(
    query: Query,
    answer: str,
    judge: str | None,
    ask_judge: AskJudge,
    sandbox_slots: asyncio.Semaphore,
) -> tuple[float, dict[str, Any]]:
    """Score one answer to ``query``.

    Returns:
        ``(score, the judge's usage fields)``, the fields empty for a local grader.

    Raises:
        GradingError: a grader crash, a failed judge call, or a verdict without "Score: N"
            (its text quoted in ``detail``).
    """
    if judge is None:
        try:
            if isinstance(query.grader, PythonGrader):
                async with sandbox_slots:
                    return await asyncio.to_thread(grade, query, answer), {}
            return grade(query, answer), {}
        except Exception as exc:
            msg = f"grading error ({type(exc).__name__}: {exc})"
            raise GradingError(msg) from exc
    messages = judge_messages(query, answer, query.grader)  # type: ignore[arg-type]
    verdict = await ask_judge(judge, messages)
    if verdict is None:  # the run stopped
        msg = f"judge {judge}: no verdict"
        raise GradingError(msg)
    score = parse_judge_score(verdict.text)
    if score is None:
        msg = f"judge {judge}: no 'Score: N' (0-10) in its verdict"
        raise GradingError(msg, verdict_excerpt(verdict.text))
    usage = {
        "judge_model": verdict.answered_by or judge,
        "judge_cost": verdict.cost,
        "judge_prompt_tokens": verdict.prompt_tokens,
        "judge_completion_tokens": verdict.completion_tokens,
    }
    return score, usage


def answer_usage(answer: Completion) -> dict[str, Any]:
    """The usage fields of a record (and of an ungraded journal entry) for one answer."""
    return {
        "cost": answer.cost,
        "cost_source": answer.cost_source,
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "reasoning_tokens": answer.reasoning_tokens,
        "latency_s": answer.latency_s,
        "answered_by": answer.answered_by,
        "retries": answer.retries,
        "truncated": answer.truncated,
    }


def ungraded_entry(
    query: Query, model: str, answer: str, usage: dict[str, Any], error: GradingError
) -> JournalEntry:
    """The journal entry of a paid answer that failed grading: kept, so no run pays again."""
    return JournalEntry(
        key=query.key,
        model=model,
        prompt_fp=query.prompt_fingerprint,
        grading_fp=query.grading_fingerprint,
        score=None,
        usage={k: v for k, v in usage.items() if v is not None or k == "cost"},
        answer=answer,
        failure=str(error),
    )
