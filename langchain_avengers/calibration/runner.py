"""Run a pool of models on labelled queries: the engine behind ``avengers calibrate``.

Every (query, model) pair is asked once through the OpenAI-compatible API, graded, and
journalled as soon as it is done (see :mod:`.store`); the records file is rebuilt from the
journal at the end, also after Ctrl-C, SIGTERM or a ``max_spend`` stop. A failed call is not
journalled, so the next run with the same output asks it again; finished pairs are skipped.
An answer that came back but could not be graded (a judge verdict without "Score: N", a
failed judge call, a grader crash) is paid for, so it is journalled ungraded with the reason
(the verdict quoted): the next run grades it again, calling the judge at most, and never asks
its model again while the query's prompt is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai

from langchain_avengers._utils.money import format_usd
from langchain_avengers._utils.progress import progress
from langchain_avengers.calibration.client import (
    ApiSettings,
    Completion,
    EmptyAnswerError,
    complete,
    failure_reason,
    is_fatal,
    make_client,
    may_have_been_billed,
)
from langchain_avengers.calibration.grading import (
    GradingError,
    answer_usage,
    grade_answer,
    ungraded_entry,
)
from langchain_avengers.calibration.plan import CalibrationPlan
from langchain_avengers.calibration.queries import Query
from langchain_avengers.calibration.spend import SpendGuard, prompt_tokens_bound, worst_case_cost
from langchain_avengers.calibration.store import (
    Journal,
    JournalEntry,
    journal_index,
    journal_path,
    read_entry,
    write_records,
)
from langchain_avengers.calibration.summary import CalibrationRun
from langchain_avengers.catalog.base import list_price_cost

__all__ = ["CalibrationRun", "run_calibration"]

logger = logging.getLogger("langchain_avengers.calibration")
Log = Callable[[str], None]
WINDOW_PER_SLOT = 4
"""Pairs queued per concurrency slot (bounds memory whatever the number of pairs)."""


@dataclass
class _Limits:
    concurrency: int
    per_model: int
    sandboxes: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))


class _Runner:
    """One run's mutable state; built and awaited by :func:`run_calibration`."""

    def __init__(
        self,
        plan: CalibrationPlan,
        api: ApiSettings,
        limits: _Limits,
        guard: SpendGuard,
        *,
        save_answers: bool,
        show_progress: bool,
        log: Log,
    ) -> None:
        self.plan = plan
        self.api = api
        self.limits = limits
        self.guard = guard
        self.save_answers = save_answers
        self.show_progress = show_progress
        self.log = log
        self.result = CalibrationRun(
            output=plan.output,
            max_spend=guard.cap,
            max_tokens=plan.max_tokens,
            shard=str(plan.shard) if plan.shard else None,
        )
        self.attempts = 1 + api.max_retries
        self._signals = 0
        self._main: asyncio.Task[Any] | None = None
        self.journal: Journal | None = None
        """Open while the run holds the journal; never opened when another run holds it."""

    # ------------------------------------------------------------------ the run

    async def run(self) -> CalibrationRun:
        started = time.perf_counter()
        journal_file = journal_path(self.plan.output)
        entries = journal_index(journal_file)
        todo = sum(1 for _ in self.plan.pending(entries))
        self.result.pairs = sum(1 for _ in self.plan.pairs())
        self.result.already_done = self.result.pairs - todo
        self.result.changed = sum(
            1 for q, m in self.plan.pending(entries) if (r := entries.get((q.key, m))) and r.graded
        )
        # where the paid answers of ungraded pairs sit (read back one at a time when graded)
        self.saved = {
            (q.key, m): ref
            for q, m in self.plan.pending(entries)
            if self.plan.saved_answer(ref := entries.get((q.key, m)), q) and ref is not None
        }
        pending = self.plan.pending(entries)
        del entries  # the run keeps no answers or records in memory
        self.journal_file = journal_file
        self._main = asyncio.current_task()
        self.client = make_client(self.api)
        self.slots = asyncio.Semaphore(self.limits.concurrency)
        self.model_slots = {
            m: asyncio.Semaphore(self.limits.per_model)
            for m in [*self.plan.models, *self.plan.judge_models()]
        }
        self.sandbox_slots = asyncio.Semaphore(self.limits.sandboxes)
        try:
            with (
                Journal(journal_file) as self.journal,
                _signals_handled(self._on_signal),
                progress(todo, "calibrate", enabled=self.show_progress, unit="pair") as self.bar,
            ):
                await self._launch(pending)
        except asyncio.CancelledError:
            if self._signals < 2:
                raise
        finally:
            await self.client.close()
            self._finish(started)
        return self.result

    async def _launch(self, pending: Iterator[tuple[Query, str]]) -> None:
        window = asyncio.Semaphore(self.limits.concurrency * WINDOW_PER_SLOT)
        tasks: set[asyncio.Task[None]] = set()

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            window.release()

        for query, model in pending:
            await window.acquire()
            if self.result.stop_reason:
                break
            task = asyncio.create_task(self._pair(query, model))
            tasks.add(task)
            task.add_done_callback(done)
        await asyncio.gather(*tasks)

    def _finish(self, started: float) -> None:
        result = self.result
        result.spend_answers = self.guard.answers
        result.spend_judge = self.guard.judge
        result.possibly_billed = self.guard.possibly_billed
        result.crossed_cap = self.guard.crossing()
        if self.journal is not None:  # another run's journal and records are its own
            plan = self.plan
            journal = journal_path(plan.output)
            result.rows_written, result.pairs_written = write_records(
                plan.output, plan.queries, plan.models, journal
            )
        result.elapsed_s = time.perf_counter() - started

    def _stop(self, reason: str) -> None:
        if self.result.stop_reason is None:
            self.result.stop_reason = reason

    def _on_signal(self) -> None:
        self._signals += 1
        if self._signals == 1:
            self._stop("interrupted")
            self.log("calibrate: stopping: finishing the calls in flight (again to abandon them)")
        elif self._main is not None:
            self._main.cancel()

    # ------------------------------------------------------------------ one pair

    async def _pair(self, query: Query, model: str) -> None:
        saved = self.saved.pop((query.key, model), None)
        bounds = self.plan.call_bounds(query, model, self.attempts)
        if saved is not None:  # a paid answer waits for its grade: at most the judge is asked
            bounds = bounds[1:]
        held = await self.guard.reserve(bounds)
        if held is None:
            self._stop("max_spend")
            return
        billed = {"answer": 0.0, "judge": 0.0, "unknown": 0.0}
        try:
            if self.result.stop_reason:
                return
            if saved is None:
                answer = await self._call(model, query.messages(), billed, "answer")
                if answer is None:
                    return
                self._note_answer(model, answer, billed)
                text, usage = answer.text, answer_usage(answer)
            else:
                entry = read_entry(self.journal_file, saved)
                text, usage = entry.answer or "", entry.usage
            try:
                score, extra = await self._grade(query, text, billed)
            except GradingError as exc:
                self._keep_ungraded(query, model, text, usage, exc)
                return
            self.result.regraded += saved is not None
            self._record(query, model, text, score, {**usage, **extra})
        finally:
            await self.guard.settle(held, **billed)

    async def _call(
        self, model: str, messages: list[dict[str, str]], billed: dict[str, float], role: str
    ) -> Completion | None:
        """One call under the global and per-model limits.

        Returns:
            The answer; None when the run stopped or an answer call failed (counted).

        Raises:
            GradingError: a judge call failed.
        """
        async with self.model_slots[model], self.slots:
            if role == "answer" and self.result.stop_reason:
                return None
            try:
                return await complete(
                    self.client,
                    model,
                    messages,
                    max_tokens=self.plan.max_tokens,
                    profile=self.plan.profiles.get(model),
                    openrouter=self.api.is_openrouter,
                )
            except (openai.APIError, EmptyAnswerError) as exc:
                if may_have_been_billed(exc):
                    billed["unknown"] += self._worst_of(model, messages)
                if is_fatal(exc):
                    self._stop(f"the API refused the run: {failure_reason(exc)}")
                if role == "judge":
                    msg = f"judge {model}: {failure_reason(exc)}"
                    raise GradingError(msg) from exc
                self._fail(model, failure_reason(exc))
                return None

    def _worst_of(self, model: str, messages: list[dict[str, str]]) -> float:
        """Worst case of a call whose billing is unknown (0 without prices)."""
        profile = self.plan.profiles.get(model)
        bound = prompt_tokens_bound(messages)
        return worst_case_cost(profile, bound, self.plan.max_tokens, self.attempts) or 0.0

    def _note_answer(self, model: str, answer: Completion, billed: dict[str, float]) -> None:
        if answer.cost is None:
            self.result.unknown_cost += 1
        billed["answer"] += answer.cost or 0.0
        self._observe(model, answer)

    def _observe(self, model: str, call: Completion) -> None:
        """Tell the spend guard what a call was billed against its list price."""
        tokens = (call.prompt_tokens, call.completion_tokens)
        listed = list_price_cost(self.plan.profiles.get(model), tokens[0] or 0, tokens[1] or 0)
        billed = call.cost if call.cost_source == "openrouter" else None
        self.guard.observe(model, billed, listed, tokens)

    async def _grade(
        self, query: Query, answer: str, billed: dict[str, float]
    ) -> tuple[float, dict[str, Any]]:
        """Score one answer (:func:`grade_answer`), the judge's bill added to ``billed``."""

        async def ask_judge(judge: str, messages: list[dict[str, str]]) -> Completion | None:
            verdict = await self._call(judge, messages, billed, "judge")
            if verdict is not None:
                billed["judge"] += verdict.cost or 0.0
                self._observe(judge, verdict)  # the spend guard learns the judge's prices
            return verdict

        judge = self.plan.judge_of(query)
        return await grade_answer(query, answer, judge, ask_judge, self.sandbox_slots)

    def _record(
        self, query: Query, model: str, answer: str, score: float, usage: dict[str, Any]
    ) -> None:
        entry = JournalEntry(
            key=query.key,
            model=model,
            prompt_fp=query.prompt_fingerprint,
            grading_fp=query.grading_fingerprint,
            score=score,
            usage={k: v for k, v in usage.items() if v is not None or k == "cost"},
            answer=answer if self.save_answers else None,
        )
        assert self.journal is not None  # pairs run only while the journal is held
        self.journal.append(entry)
        self.result.answered += 1
        self.result.truncated += bool(usage.get("truncated"))
        self._advance()

    def _keep_ungraded(
        self, query: Query, model: str, answer: str, usage: dict[str, Any], exc: GradingError
    ) -> None:
        """Journal a paid answer that failed grading, with why, so no run pays for it again."""
        assert self.journal is not None  # pairs run only while the journal is held
        self.journal.append(ungraded_entry(query, model, answer, usage, exc))
        self.result.ungraded += 1
        self._fail(model, exc.reason, exc.detail)

    def _fail(self, model: str, reason: str, example: str | None = None) -> None:
        self.result.failed += 1
        key = f"{model}: {reason}"
        self.result.failures[key] += 1
        if example is not None:
            self.result.failure_examples.setdefault(key, example)
        self._advance()

    def _advance(self) -> None:
        self.bar.update(1)
        failed = f", {self.result.failed} failed" if self.result.failed else ""
        self.bar.set_postfix_str(f"{format_usd(self.guard.spent)}{failed}", refresh=False)


@contextlib.contextmanager
def _signals_handled(handler: Callable[[], None]) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``handler`` while the run is on (main thread, POSIX)."""
    loop = asyncio.get_running_loop()
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, handler)
                installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_calibration(
    plan: CalibrationPlan,
    api: ApiSettings,
    *,
    concurrency: int = 8,
    per_model_concurrency: int | None = None,
    max_spend: float | None = None,
    save_answers: bool = False,
    show_progress: bool = True,
    log: Log | None = None,
) -> CalibrationRun:
    """Run ``plan``'s pending pairs and rebuild its output; see :func:`calibrate`."""
    unpriced = plan.unpriced_models()
    if unpriced and max_spend is not None:
        msg = (
            f"--max-spend needs list prices, and the catalog has none for "
            f"{', '.join(unpriced)} (run `avengers catalog refresh`, or drop the cap)"
        )
        raise ValueError(msg)
    _check_output(plan.output)
    note = log or logger.warning
    for model in unpriced:
        nearest = ", ".join(plan.catalog.nearest(model)) or "none"
        note(
            f"calibrate: the catalog has no price for {model} (nearest known: {nearest}); its "
            "cost comes from the endpoint's usage.cost only"
        )
    limits = _Limits(concurrency, per_model_concurrency or concurrency)
    runner = _Runner(
        plan,
        api,
        limits,
        SpendGuard(cap=max_spend),
        save_answers=save_answers,
        show_progress=show_progress,
        log=note,
    )
    return await runner.run()


def _check_output(output: Path) -> None:
    """Refuse to replace a records file this tool did not write (it has no journal)."""
    if output.exists() and not journal_path(output).exists():
        msg = (
            f"{output} exists but has no journal ({journal_path(output).name}) beside it, so it "
            "was not written by `avengers calibrate`; choose another -o or move it away"
        )
        raise ValueError(msg)
