"""Spend pacing while the application runs, and what one call is expected to cost.

- :class:`SpendPacer` adjusts alpha from the cost of every finished call, toward a target rate
  (USD per 1,000 calls or USD per hour);
- :func:`expected_call_cost` estimates what one call would cost on one model, for a per-call cap.

:class:`AlphaSource` is what the chat model and the agent middleware ask of a pacer (a
:class:`SpendPacer` is one).

The pacer is a projected integral controller on the spend debt (dual ascent on the budget
constraint: alpha falls as the shadow price of a dollar rises): every finished call moves alpha by
``span * (allowance - cost) / window_allowance``, where ``allowance`` is what the target
allows for that call (or for the time since the last update), ``window_allowance`` what it
allows over the window and ``span = max_alpha - min_alpha``. It relies on one property of the
router: a larger alpha never makes the expected cost of a call smaller (the score is linear in
alpha, so raising it moves each query's choice toward more accurate, dearer models).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from langchain_avengers.policies.ledger import (
    UNKNOWN_COST_MEMORY,
    LocalPacerStore,
    PacerRules,
    PacerStore,
)

__all__ = [
    "UNKNOWN_COST_MEMORY",
    "AlphaSource",
    "PacerState",
    "PacerStore",
    "SpendPacer",
    "check_pacer",
    "expected_call_cost",
]

DEFAULT_WINDOW_CALLS = 100
DEFAULT_WINDOW_SECONDS = 600.0
SECONDS_PER_HOUR = 3600.0
ROUNDING = 1e-9
"""Relative slack when a bound is compared with a target, so a target equal to a printed
bound is met despite float rounding in the resampled means."""


@runtime_checkable
class AlphaSource(Protocol):
    """Where a call's alpha comes from when the call gives none: a spend pacer.

    Both methods are called from any thread or event loop, so they must be thread- and
    async-safe and cheap (no I/O).
    """

    def alpha(self) -> float:
        """The alpha to route the next call with, in [0, 1]."""
        ...

    def record(self, cost_usd: float) -> None:
        """The observed USD cost of one finished call (called once per answered call)."""
        ...


def check_pacer(value: object, where: str = "pacer") -> AlphaSource | None:
    """None or an :class:`AlphaSource` (an object with ``alpha()`` and ``record(cost_usd)``)."""
    if value is not None and not isinstance(value, AlphaSource):
        msg = (
            f"{where}: expected an object with alpha() and record(cost_usd) (a SpendPacer), "
            f"got {type(value).__name__}"
        )
        raise ValueError(msg)
    return value


@dataclass(frozen=True)
class PacerState:
    """What a :class:`SpendPacer` has seen so far, for logs and dashboards."""

    alpha: float
    """The alpha the next call gets."""
    calls: int
    """Finished calls recorded."""
    spend_usd: float
    """USD recorded (unknown costs counted at their estimate)."""
    allowance_usd: float
    """USD the target allowed so far: rate times calls, or times hours since the start."""
    unknown_costs: int
    """Calls recorded without a known cost."""
    forgiven_usd: float
    """Debt dropped because it exceeded one window's allowance while alpha sat at
    ``min_alpha``: the target was below what the cheapest routing costs."""
    at_bound: Literal["min", "max"] | None
    """``"min"`` when alpha sits at ``min_alpha`` (the target is tight), ``"max"`` at
    ``max_alpha`` (the target leaves room)."""


class SpendPacer:
    """Paces spend toward a target rate by adjusting the alpha of the next calls.

    Share one pacer between every call that spends from the same budget: ask :meth:`alpha`
    before routing a call and :meth:`record` its cost once it finished. Both are cheap and
    take one lock (no I/O, no waiting), so threads and coroutines may call them at will.

    **Across processes.** With ``store=RedisPacerState(url, key=...)`` every worker's pacer
    counts into one ledger on a Redis server: :meth:`record` is one atomic Lua step there (one
    round trip), :meth:`alpha` reads the ledger this process last saw (no I/O), so a worker
    sees the others' spend at its next record. If Redis is unreachable the pacer goes on from
    its last view in this process (one warning; see ``RedisPacerState``).

    **How it moves.** Each finished call changes alpha by
    ``span * (allowance - cost) / window_allowance``: spending at exactly the target leaves
    alpha where it is; spending at twice the target for a whole window moves alpha across its
    whole range ``span = max_alpha - min_alpha``. ``window_allowance`` is the target's spend
    over ``window_calls`` calls (per-call target) or ``window_seconds`` (hourly target; time
    passing then raises alpha, each cost lowers it). The window trades reaction time against
    jitter: aim for a window that holds some tens of calls.

    **What it guarantees.** The state is the debt, spend minus allowance: alpha is
    ``initial_alpha - span * debt / window_allowance``, floored at ``min_alpha`` and capped at
    ``max_alpha``, with up to one window's allowance of debt remembered below the floor. So,
    from the first call on:

    - spend <= allowance + window_allowance * (1 + (initial_alpha - min_alpha) / span) +
      ``forgiven_usd``, the last being debt dropped beyond that reserve (alpha sat at
      ``min_alpha`` and calls still cost more than the target: no alpha in range meets it);
    - spend >= allowance - window_allowance * (max_alpha - initial_alpha) / span, unless alpha
      reached ``max_alpha`` (the target allows more than the dearest routing costs; credit
      beyond it is not banked, so a quiet hour is not spent in one burst).

    With the default start at ``min_alpha``, the mean spend over ``n`` calls is within
    ``window_calls / n`` of a per-call target (10% after 1,000 calls with the default window of
    100), and usually far closer (``benchmarks/spend_pacing.py``).

    **Warm-up.** It starts at ``initial_alpha`` (default ``min_alpha``: cheap first, so the
    warm-up spends less than a target that ``min_alpha`` can meet) and climbs while calls cost
    less than the allowance, reaching the alpha the target affords within one or two windows.
    Starting at the alpha ``Evaluation.choose_alpha(target_cost=...)`` picked shortens it.

    **Unknown costs.** :meth:`record` with ``None`` or NaN (a provider that reported no cost
    and a model without list prices) counts the mean of the last known costs (over about
    ``UNKNOWN_COST_MEMORY`` calls) instead; before any cost is known it leaves alpha as it
    is. ``PacerState.unknown_costs`` counts them.

    Args:
        usd_per_1k_calls: Target spend per 1,000 calls.
        usd_per_hour: Target spend per hour (of the injected ``clock``).
        min_alpha: Lowest alpha handed out (the cheapest routing allowed).
        max_alpha: Highest alpha handed out.
        initial_alpha: Alpha of the first calls; default ``min_alpha``.
        window_calls: Reaction window in calls (per-1,000-calls target only), default 100.
        window_seconds: Reaction window in seconds (hourly target only), default 600.
        clock: Seconds on a clock (default ``time.monotonic``, or ``time.time`` with a
            ``store``, as workers must read one clock alike); inject one for tests.
        store: Where the ledger lives: ``None`` for this process, or a ``PacerStore`` shared
            by several workers (``RedisPacerState``).

    Raises:
        ValueError: not exactly one target, a target that is not a positive finite number,
            bounds outside ``0 <= min_alpha < max_alpha <= 1``, an ``initial_alpha`` outside
            them, or a window that is not positive or belongs to the other kind of target.

    Examples:
        >>> pacer = SpendPacer(usd_per_1k_calls=4.0)
        >>> alpha = pacer.alpha()  # route the next call with it
        >>> pacer.record(0.0031)  # that call's cost in USD
    """

    def __init__(
        self,
        *,
        usd_per_1k_calls: float | None = None,
        usd_per_hour: float | None = None,
        min_alpha: float = 0.0,
        max_alpha: float = 1.0,
        initial_alpha: float | None = None,
        window_calls: int | None = None,
        window_seconds: float | None = None,
        clock: Callable[[], float] | None = None,
        store: PacerStore | None = None,
    ) -> None:
        rate = _check_target(usd_per_1k_calls, usd_per_hour)
        self.min_alpha, self.max_alpha = _check_bounds(min_alpha, max_alpha)
        start = self.min_alpha if initial_alpha is None else float(initial_alpha)
        if not self.min_alpha <= start <= self.max_alpha:
            msg = (
                f"initial_alpha must be within [min_alpha, max_alpha] = "
                f"[{self.min_alpha:g}, {self.max_alpha:g}], got {initial_alpha!r}"
            )
            raise ValueError(msg)
        if store is not None and not isinstance(store, PacerStore):
            msg = (
                "store: expected a PacerStore (LocalPacerStore, RedisPacerState), got "
                f"{type(store).__name__}"
            )
            raise TypeError(msg)
        self.usd_per_1k_calls = usd_per_1k_calls
        self.usd_per_hour = usd_per_hour
        if usd_per_1k_calls is not None:
            window = _check_window(window_calls, DEFAULT_WINDOW_CALLS, window_seconds, "calls")
            per_call, per_second = rate / 1000.0, 0.0
            window_usd = per_call * window
        else:
            window = _check_window(window_seconds, DEFAULT_WINDOW_SECONDS, window_calls, "seconds")
            per_call, per_second = 0.0, rate / SECONDS_PER_HOUR
            window_usd = per_second * window
        self.window = window
        self.rules = PacerRules(
            per_call, per_second, window_usd, self.min_alpha, self.max_alpha, start
        )
        """What each cost does to the ledger (fixed)."""
        if clock is None:  # a shared ledger needs a clock every worker reads alike
            clock = time.monotonic if store is None else time.time
        self._clock = clock
        self.store: PacerStore = LocalPacerStore() if store is None else store
        """Where the ledger lives: this process, or a store workers share."""
        self.store.attach(self.rules, clock())

    def __repr__(self) -> str:
        target = (
            f"usd_per_1k_calls={self.usd_per_1k_calls!r}"
            if self.usd_per_1k_calls is not None
            else f"usd_per_hour={self.usd_per_hour!r}"
        )
        return (
            f"SpendPacer({target}, min_alpha={self.min_alpha:g}, max_alpha={self.max_alpha:g}, "
            f"window={self.window:g})"
        )

    def alpha(self) -> float:
        """The alpha to route the next call with (no I/O, also with a shared store)."""
        return max(self.store.view(self.rules, self._clock()).level, self.min_alpha)

    def record(self, cost_usd: float | None) -> None:
        """Count one finished call's cost in USD (``None`` or NaN: unknown, see the class).

        Raises:
            ValueError: a negative or infinite cost (nothing is recorded).
        """
        cost = None if cost_usd is None or math.isnan(cost_usd) else float(cost_usd)
        if cost is not None and not 0.0 <= cost < math.inf:
            msg = (
                f"cost_usd must be a finite USD amount >= 0 (or None if unknown), got {cost_usd!r}"
            )
            raise ValueError(msg)
        self.store.record(self.rules, cost, self._clock())

    def state(self) -> PacerState:
        """A consistent snapshot of what the pacer has seen (read from a shared store)."""
        ledger = self.store.snapshot(self.rules, self._clock())
        alpha = max(ledger.level, self.min_alpha)
        at_bound: Literal["min", "max"] | None = None
        if alpha <= self.min_alpha:
            at_bound = "min"
        elif alpha >= self.max_alpha:
            at_bound = "max"
        if self.rules.per_call_usd:
            allowance = self.rules.per_call_usd * ledger.calls
        else:
            allowance = self.rules.per_second_usd * (ledger.last - ledger.started)
        return PacerState(
            alpha=alpha,
            calls=ledger.calls,
            spend_usd=ledger.spend,
            allowance_usd=allowance,
            unknown_costs=ledger.unknown,
            forgiven_usd=ledger.forgiven,
            at_bound=at_bound,
        )

    def fallback_reason(self) -> str | None:
        """Why the ledger is kept in this process for now (its shared store is down), if so."""
        reason = getattr(self.store, "fallback_reason", None)
        return reason() if callable(reason) else None


def _check_target(per_1k_calls: float | None, per_hour: float | None) -> float:
    """The one target given, as a float; refuse none, both or a bad number."""
    if (per_1k_calls is None) == (per_hour is None):
        msg = "SpendPacer: give exactly one of usd_per_1k_calls or usd_per_hour"
        raise ValueError(msg)
    name = "usd_per_1k_calls" if per_1k_calls is not None else "usd_per_hour"
    value = per_1k_calls if per_1k_calls is not None else per_hour
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        msg = f"{name} must be a positive finite number of USD, got {value!r}"
        raise ValueError(msg)
    return float(value)


def _check_bounds(min_alpha: float, max_alpha: float) -> tuple[float, float]:
    low, high = float(min_alpha), float(max_alpha)
    if not 0.0 <= low < high <= 1.0:
        msg = (
            "min_alpha and max_alpha must satisfy 0 <= min_alpha < max_alpha <= 1, got "
            f"min_alpha={min_alpha!r}, max_alpha={max_alpha!r}"
        )
        raise ValueError(msg)
    return low, high


def _check_window(
    window: float | None, default: float, other: float | None, unit: Literal["calls", "seconds"]
) -> float:
    """The reaction window of this kind of target; the other kind's window is a mistake."""
    if other is not None:
        other_unit = "seconds" if unit == "calls" else "calls"
        target = "usd_per_1k_calls" if unit == "calls" else "usd_per_hour"
        msg = f"window_{other_unit} does not apply to a {target} target; give window_{unit}"
        raise ValueError(msg)
    value = default if window is None else window
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        msg = f"window_{unit} must be a positive number, got {window!r}"
        raise ValueError(msg)
    return float(value)


def expected_call_cost(
    prompt_tokens: int, profile: Mapping[str, Any] | None, expected_answer_cost: float
) -> float | None:
    """USD one call to a model is expected to cost, for a per-call cap.

    The prompt at the model's input list price, plus the model's expected cost per answer from
    calibration (the router's ``CandidateScore.expected_cost`` for the query's nearest
    clusters). Conservative: the calibration figure already paid for the calibration prompts,
    so a prompt is counted twice over.

    Args:
        prompt_tokens: Estimated prompt tokens of the call.
        profile: The model's catalog profile (``input_usd_per_mtok``: USD per million input
            tokens).
        expected_answer_cost: The model's expected USD per answer from calibration.

    Returns:
        The estimate, or ``None`` when the profile has no input price.

    Raises:
        ValueError: negative tokens, or an expected cost that is not a finite USD amount >= 0.
    """
    if isinstance(prompt_tokens, bool) or not isinstance(prompt_tokens, int) or prompt_tokens < 0:
        msg = f"prompt_tokens must be an int >= 0, got {prompt_tokens!r}"
        raise ValueError(msg)
    if not 0.0 <= float(expected_answer_cost) < math.inf:
        msg = f"expected_answer_cost must be a finite USD amount >= 0, got {expected_answer_cost!r}"
        raise ValueError(msg)
    price = (profile or {}).get("input_usd_per_mtok")
    if price is None:
        return None
    return prompt_tokens * float(price) / 1e6 + float(expected_answer_cost)
