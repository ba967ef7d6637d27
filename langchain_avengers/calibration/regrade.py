"""Re-score saved answers with the current graders, without asking any model again.

Answers are in the journal when the run had ``save_answers`` (``--save-answers``). Local
graders need no call; a judge grader needs the judge model, so judge-graded pairs are only
re-judged with ``allow_judge_calls`` (their cost is counted and recorded like a run's).
Pairs a run answered but could not grade (journalled ungraded, their answer always saved) are
graded here too; a pair that fails grading again is journalled ungraded with the new reason,
the judge's verdict quoted, unless it had a current score, which is kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import openai

from langchain_avengers._utils.money import format_usd
from langchain_avengers.calibration.client import (
    ApiSettings,
    complete,
    failure_reason,
    make_client,
)
from langchain_avengers.calibration.graders import (
    grade,
    judge_messages,
    parse_judge_score,
    verdict_excerpt,
)
from langchain_avengers.calibration.plan import CalibrationPlan
from langchain_avengers.calibration.queries import JudgeGrader, Query
from langchain_avengers.calibration.store import (
    Journal,
    JournalEntry,
    journal_path,
    latest_entries,
    write_records,
)

__all__ = ["RegradeRun", "run_regrade"]


@dataclass
class RegradeRun:
    """What a regrade did; :meth:`describe` is its summary."""

    output: Path
    regraded: int = 0
    changed: int = 0
    """Regraded pairs whose score changed."""
    kept: int = 0
    """Pairs kept as they were: judge-graded and unchanged (no judge calls allowed)."""
    unjudged: int = 0
    """Judge-graded pairs with no score yet (a run's verdict failed), no judge calls allowed."""
    no_answer: int = 0
    """Pairs whose grading changed but whose answer was not saved: left out of the output."""
    unsaved: int = 0
    """Pairs whose grading is unchanged but whose answer was not saved: kept as they were."""
    other_prompt: int = 0
    """Answers to an earlier text of the query: left out of the output."""
    failed: Counter[str] = field(default_factory=Counter)
    judge_spend: float = 0.0
    rows_written: int = 0
    pairs_written: int = 0

    def describe(self) -> str:
        """The summary printed at the end of ``avengers regrade``."""
        lines = [
            f"regrade: {self.regraded} pairs re-scored ({self.changed} scores changed), "
            f"{self.kept} judge-graded pairs kept as they were"
        ]
        if self.unjudged:
            lines.append(
                f"  {self.unjudged} judge-graded pairs have no score yet (their verdict failed): "
                "pass --allow-judge-calls, or run calibrate, to judge them"
            )
        if self.unsaved:
            lines.append(
                f"  {self.unsaved} pairs have no saved answer (calibrated without "
                "--save-answers): kept with the scores they had"
            )
        if self.no_answer:
            lines.append(
                f"  {self.no_answer} pairs graded otherwise have no saved answer and are left "
                "out (run calibrate with --save-answers, or again to re-ask them)"
            )
        if self.other_prompt:
            lines.append(f"  {self.other_prompt} answers to a query text since changed: left out")
        for reason, count in self.failed.most_common(8):
            lines.append(f"  failed {count}x {reason}")
        if self.judge_spend:
            lines.append(f"  judge spend {format_usd(self.judge_spend)}")
        lines.append(
            f"  wrote {self.output}: {self.rows_written} queries, {self.pairs_written} pairs"
        )
        return "\n".join(lines)


async def run_regrade(
    plan: CalibrationPlan,
    *,
    api: ApiSettings | None = None,
    allow_judge_calls: bool = False,
    concurrency: int = 8,
) -> RegradeRun:
    """Re-score ``plan``'s journalled answers and rebuild its output.

    Raises:
        ValueError: judge-graded pairs whose rubric or reference changed need the judge and
            ``allow_judge_calls`` is off (nothing is written), or judge calls are allowed
            without ``api``.
    """
    journal_file = journal_path(plan.output)
    if not journal_file.exists():
        msg = f"{journal_file}: no journal, so no saved answers to regrade"
        raise ValueError(msg)
    by_key = {q.key: q for q in plan.queries}
    entries = latest_entries(journal_file, answers=True)
    result = RegradeRun(output=plan.output)
    work: list[tuple[Query, JournalEntry]] = []
    blocked = []
    for (key, model), entry in entries.items():
        query = by_key.get(key)
        if query is None or model not in plan.models:
            continue
        if entry.prompt_fp != query.prompt_fingerprint:
            result.other_prompt += 1
        elif entry.answer is None:
            current = entry.is_current(query)
            result.unsaved += current
            result.no_answer += not current
        elif isinstance(query.grader, JudgeGrader) and not allow_judge_calls:
            if not entry.graded:
                result.unjudged += 1
            elif entry.is_current(query):
                result.kept += 1
            else:
                blocked.append(query)
        else:
            work.append((query, entry))
    if blocked:
        lines = ", ".join(str(q.line) for q in blocked[:5])
        msg = (
            f"{len(blocked)} judge-graded pairs need re-judging (rubric or reference changed; "
            f"query lines {lines}); pass --allow-judge-calls to call the judge model"
        )
        raise ValueError(msg)
    if any(isinstance(q.grader, JudgeGrader) for q, _ in work) and api is None:
        msg = "re-judging needs an API key and base URL"
        raise ValueError(msg)
    del entries
    with Journal(journal_file) as journal:
        await _regrade_all(plan, work, journal, result, api, concurrency)
    result.rows_written, result.pairs_written = write_records(
        plan.output, plan.queries, plan.models, journal_file
    )
    return result


async def _regrade_all(
    plan: CalibrationPlan,
    work: Sequence[tuple[Query, JournalEntry]],
    journal: Journal,
    result: RegradeRun,
    api: ApiSettings | None,
    concurrency: int,
) -> None:
    client = make_client(api) if api is not None else None
    slots = asyncio.Semaphore(max(1, os.cpu_count() or 1))
    calls = asyncio.Semaphore(concurrency)

    def failed(query: Query, entry: JournalEntry, reason: str) -> None:
        """Count a failure, and journal it unless a current score would be lost."""
        result.failed[reason] += 1
        if not entry.graded or not entry.is_current(query):
            journal.append(
                dataclasses.replace(
                    entry, score=None, failure=reason, grading_fp=query.grading_fingerprint
                )
            )

    async def one(query: Query, entry: JournalEntry) -> None:
        answer = entry.answer or ""
        usage = dict(entry.usage)
        judge = plan.judge_of(query)
        if judge is None or client is None:
            async with slots:
                try:
                    score = await asyncio.to_thread(grade, query, answer)
                except Exception as exc:
                    failed(query, entry, f"grading error ({type(exc).__name__}: {exc})")
                    return
        else:
            messages = judge_messages(query, answer, query.grader)  # type: ignore[arg-type]
            async with calls:
                try:
                    verdict = await complete(
                        client,
                        judge,
                        messages,
                        max_tokens=plan.max_tokens,
                        profile=plan.profiles.get(judge),
                        openrouter=api is not None and api.is_openrouter,
                    )
                except openai.APIError as exc:
                    failed(query, entry, f"judge {judge}: {failure_reason(exc)}")
                    return
            result.judge_spend += verdict.cost or 0.0
            parsed = parse_judge_score(verdict.text)
            if parsed is None:
                verdict_text = verdict_excerpt(verdict.text)
                failed(query, entry, f"judge {judge}: no 'Score: N' in its verdict: {verdict_text}")
                return
            score = parsed
            usage.update(judge_model=verdict.answered_by or judge, judge_cost=verdict.cost)
        result.regraded += 1
        result.changed += score != entry.score
        journal.append(
            dataclasses.replace(
                entry, score=score, usage=usage, grading_fp=query.grading_fingerprint, failure=None
            )
        )

    try:
        await asyncio.gather(*(one(q, e) for q, e in work))
    finally:
        if client is not None:
            await client.close()
