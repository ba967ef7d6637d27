"""The spend pacer's state (its ledger), the one step that changes it, and where it is kept.

A :class:`~langchain_avengers.policies.pacing.SpendPacer` keeps its state in a
:class:`PacerStore`: :class:`LocalPacerStore` (this process, the default) or
``RedisPacerState`` (:mod:`langchain_avengers.policies.redis_store`), which workers in several
processes share. The step that records a cost is written here in Python and, for Redis, once
more as a Lua script that runs atomically on the server; the two do the same float operations
in the same order, so they give the same ledger bit for bit (``tests`` check it).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

__all__ = ["Ledger", "LocalPacerStore", "PacerRules", "PacerStore", "accrue", "record_step"]

UNKNOWN_COST_MEMORY = 50
"""Calls over which the mean cost that stands in for an unknown cost is averaged."""


@dataclass(frozen=True)
class PacerRules:
    """What a pacer's target makes of each cost: fixed when the pacer is built."""

    per_call_usd: float
    """Allowance per call (per-1,000-calls target), else 0."""
    per_second_usd: float
    """Allowance per second (hourly target), else 0."""
    window_usd: float
    """Allowance over the reaction window."""
    min_alpha: float
    max_alpha: float
    initial_alpha: float

    @property
    def span(self) -> float:
        """The range alpha moves in."""
        return self.max_alpha - self.min_alpha

    def fingerprint(self) -> str:
        """The rules as text: pacers that share one ledger must have the same rules."""
        return "|".join(
            repr(float(v))
            for v in (
                self.per_call_usd,
                self.per_second_usd,
                self.window_usd,
                self.min_alpha,
                self.max_alpha,
                self.initial_alpha,
            )
        )


@dataclass(frozen=True)
class Ledger:
    """What a pacer has counted; alpha is ``max(level, min_alpha)``."""

    level: float
    """Alpha before the floor: below ``min_alpha`` it holds up to one window of debt."""
    calls: int
    unknown: int
    spend: float
    forgiven: float
    mean_cost: float | None
    """Running mean of the known costs (stands in for unknown ones)."""
    started: float
    """Clock reading of the first use."""
    last: float
    """Clock reading up to which time has been credited (hourly target)."""

    @classmethod
    def fresh(cls, rules: PacerRules, now: float) -> Ledger:
        """A ledger before any call."""
        return cls(rules.initial_alpha, 0, 0, 0.0, 0.0, None, now, now)


def _move(ledger: Ledger, rules: PacerRules, credit_usd: float) -> Ledger:
    """Shift the level by ``credit_usd`` (negative: debt), clipped to its range."""
    level = ledger.level + rules.span * credit_usd / rules.window_usd
    floor = rules.min_alpha - rules.span
    forgiven = ledger.forgiven
    if level < floor:
        forgiven = forgiven + (floor - level) * rules.window_usd / rules.span
    return replace(ledger, level=min(max(level, floor), rules.max_alpha), forgiven=forgiven)


def accrue(ledger: Ledger, rules: PacerRules, now: float) -> Ledger:
    """Hourly target: credit the time since the ledger's ``last`` reading."""
    if not rules.per_second_usd:
        return ledger
    elapsed = max(0.0, now - ledger.last)
    ledger = replace(ledger, last=max(ledger.last, now))
    return _move(ledger, rules, rules.per_second_usd * elapsed)


def record_step(ledger: Ledger, rules: PacerRules, cost: float | None, now: float) -> Ledger:
    """Count one finished call at ``now``: its cost in USD, or ``None`` when unknown."""
    ledger = accrue(ledger, rules, now)
    calls, unknown, mean = ledger.calls + 1, ledger.unknown, ledger.mean_cost
    if cost is None:
        unknown += 1
        cost = rules.per_call_usd if mean is None else mean
    else:
        weight = 1.0 / min(calls - unknown, UNKNOWN_COST_MEMORY)
        previous = cost if mean is None else mean
        mean = previous + weight * (cost - previous)
    ledger = replace(ledger, calls=calls, unknown=unknown, mean_cost=mean)
    ledger = replace(ledger, spend=ledger.spend + cost)
    return _move(ledger, rules, rules.per_call_usd - cost)


def replay(
    ledger: Ledger, rules: PacerRules, steps: Sequence[tuple[float | None, float]]
) -> Ledger:
    """Apply ``(cost, at)`` steps in order."""
    for cost, at in steps:
        ledger = record_step(ledger, rules, cost, at)
    return ledger


@runtime_checkable
class PacerStore(Protocol):
    """Where a pacer's ledger lives. Implementations must be thread-safe."""

    def attach(self, rules: PacerRules, now: float) -> None:
        """Called once by the pacer: start the ledger if new, check its rules if not.

        Raises:
            ValueError: a shared ledger kept with other rules.
        """
        ...

    def view(self, rules: PacerRules, now: float) -> Ledger:
        """The ledger as of ``now``, fast (no I/O: a shared store answers from its cache)."""
        ...

    def record(self, rules: PacerRules, cost: float | None, now: float) -> Ledger:
        """Count one call's cost atomically; the ledger after it."""
        ...

    def snapshot(self, rules: PacerRules, now: float) -> Ledger:
        """The ledger as of ``now``, fresh (a shared store reads it)."""
        ...


class LocalPacerStore:
    """A ledger in this process, under a lock (the default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ledger: Ledger | None = None

    def attach(self, rules: PacerRules, now: float) -> None:
        """Start the ledger."""
        with self._lock:
            if self._ledger is None:
                self._ledger = Ledger.fresh(rules, now)

    def view(self, rules: PacerRules, now: float) -> Ledger:
        """The ledger with the time since its last reading credited (and kept)."""
        with self._lock:
            self._ledger = accrue(self._current(rules, now), rules, now)
            return self._ledger

    def record(self, rules: PacerRules, cost: float | None, now: float) -> Ledger:
        """Count one cost."""
        with self._lock:
            self._ledger = record_step(self._current(rules, now), rules, cost, now)
            return self._ledger

    def snapshot(self, rules: PacerRules, now: float) -> Ledger:
        """Same as :meth:`view`: nothing to read."""
        return self.view(rules, now)

    def _current(self, rules: PacerRules, now: float) -> Ledger:
        return self._ledger if self._ledger is not None else Ledger.fresh(rules, now)
