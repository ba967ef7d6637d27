"""What a calibration run did: counts, spend, failures, and its one-paragraph summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from langchain_avengers._utils.money import format_usd


@dataclass
class CalibrationRun:
    """What a run did; :meth:`describe` is the end-of-run summary."""

    output: Path
    pairs: int = 0
    """Pairs of this run (its shard's share of queries x models)."""
    already_done: int = 0
    changed: int = 0
    """Pairs journalled under another query text, reference or grader, asked again."""
    answered: int = 0
    regraded: int = 0
    """Pairs graded from an answer paid in an earlier run (their model not asked again)."""
    failed: int = 0
    ungraded: int = 0
    """Failed pairs whose answer came back but was not graded: journalled ungraded."""
    failures: Counter[str] = field(default_factory=Counter)
    failure_examples: dict[str, str] = field(default_factory=dict)
    """One judge verdict per failure reason that had one, quoted for the summary."""
    truncated: int = 0
    unknown_cost: int = 0
    spend_answers: float = 0.0
    spend_judge: float = 0.0
    possibly_billed: float = 0.0
    stop_reason: str | None = None
    """``None`` (ran out of pairs), ``"max_spend"``, ``"interrupted"`` or an API refusal."""
    rows_written: int = 0
    pairs_written: int = 0
    elapsed_s: float = 0.0
    max_spend: float | None = None
    max_tokens: int = 0
    shard: str | None = None
    crossed_cap: str | None = None
    """Why the spend went over ``max_spend`` (bills above every worst case), if it did."""

    @property
    def spend(self) -> float:
        """USD billed in this run (answers and judge)."""
        return self.spend_answers + self.spend_judge

    @property
    def not_started(self) -> int:
        """Pending pairs never finished (stopped, interrupted) or never started."""
        return self.pairs - self.already_done - self.answered - self.failed

    @property
    def complete(self) -> bool:
        """Every pair of the run is in the journal."""
        return self.already_done + self.answered == self.pairs

    def describe(self) -> str:
        """The summary printed at the end of ``avengers calibrate``."""
        share = f" (shard {self.shard})" if self.shard else ""
        lines = [
            f"calibrate: {self.pairs} pairs{share}: {self.answered} answered now, "
            f"{self.already_done} already done (skipped), {self.failed} failed, "
            f"{self.not_started} not started ({self.elapsed_s:.1f} s)"
        ]
        if self.changed:
            lines.append(f"  {self.changed} pairs were asked again: their query or grading changed")
        if self.regraded:
            lines.append(
                f"  {self.regraded} answers paid for in an earlier run were graded again "
                "(their models were not asked again)"
            )
        for reason, count in self.failures.most_common(8):
            example = self.failure_examples.get(reason)
            lines.append(f"  failed {count}x {reason}" + (f", e.g. {example}" if example else ""))
        if self.failed:
            lines.append("  failed pairs are not recorded; run the same command to retry them")
        if self.ungraded:
            lines.append(
                f"  {self.ungraded} of them answered and are kept ungraded in the journal "
                "(verdicts included): the next run grades them without asking their models again"
            )
        spend = (
            f"  spend {format_usd(self.spend)} (answers {format_usd(self.spend_answers)} + judge "
            f"{format_usd(self.spend_judge)})"
        )
        if self.possibly_billed:
            spend += f"; up to {format_usd(self.possibly_billed)} more for calls that timed out"
        if self.unknown_cost:
            spend += f"; {self.unknown_cost} answers of unknown cost not counted"
        lines.append(spend)
        if self.truncated:
            lines.append(
                f"  {self.truncated} answers stopped at --max-tokens {self.max_tokens}: their "
                "scores may understate those models"
            )
        if self.crossed_cap:
            lines.append(self.crossed_cap)
        elif self.stop_reason == "max_spend":
            lines.append(
                f"  stopped before crossing --max-spend ${self.max_spend:g}: the next pair's "
                "worst case would not fit"
            )
        if self.stop_reason == "interrupted":
            lines.append("  interrupted: every finished pair is kept; run again to resume")
        elif self.stop_reason and self.stop_reason != "max_spend":
            lines.append(f"  stopped: {self.stop_reason}")
        lines.append(
            f"  wrote {self.output}: {self.rows_written} queries, {self.pairs_written} pairs"
        )
        return "\n".join(lines)
