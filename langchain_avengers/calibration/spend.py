"""Spend: the cost estimate of a dry run, worst-case bounds, and the ``--max-spend`` guard.

Worst case of one call, a true upper bound at the catalog's list prices: every UTF-8 byte of
the messages counted as a token (no tokenizer makes more tokens than bytes) plus
:data:`MESSAGE_OVERHEAD_TOKENS` per message and :data:`REQUEST_OVERHEAD_TOKENS` per request
for chat templates, times the input price; plus ``max_tokens`` times the output price
(``max_tokens`` bounds reasoning tokens too); times ``1 + max_retries``, since an attempt that
timed out may have been billed before it was retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_avengers.openrouter.messages import estimate_text_tokens

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "REASONING_OUTPUT_TOKENS",
    "CallBound",
    "Reservation",
    "SpendGuard",
    "assumed_output_tokens",
    "estimated_prompt_tokens",
    "prompt_tokens_bound",
    "tokens_bound",
    "worst_case_cost",
]

MESSAGE_OVERHEAD_TOKENS = 16
REQUEST_OVERHEAD_TOKENS = 64
DEFAULT_OUTPUT_TOKENS = 400
"""Dry-run assumption for a model without reasoning: a short answer with some working."""
REASONING_OUTPUT_TOKENS = 2000
"""Dry-run assumption for a reasoning model: it bills hidden reasoning tokens as output."""


def prompt_tokens_bound(messages: Sequence[Mapping[str, str]]) -> int:
    """Most prompt tokens ``messages`` can cost: one per UTF-8 byte plus template overhead."""
    content = sum(len(m["content"].encode("utf-8")) for m in messages)
    return tokens_bound(content, len(messages))


def tokens_bound(content_bytes: int, n_messages: int) -> int:
    """Most prompt tokens of ``n_messages`` messages holding ``content_bytes`` UTF-8 bytes."""
    return content_bytes + MESSAGE_OVERHEAD_TOKENS * n_messages + REQUEST_OVERHEAD_TOKENS


def estimated_prompt_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    """Likely prompt tokens (4 UTF-8 bytes a token, 4 tokens a message), for estimates."""
    return sum(estimate_text_tokens(m["content"]) + 4 for m in messages)


def assumed_output_tokens(profile: Mapping[str, Any] | None, max_tokens: int) -> int:
    """The dry run's output assumption for a model, never above ``max_tokens``."""
    reasoning = bool(profile and profile.get("reasoning_output"))
    return min(max_tokens, REASONING_OUTPUT_TOKENS if reasoning else DEFAULT_OUTPUT_TOKENS)


def worst_case_cost(
    profile: Mapping[str, Any] | None, prompt_bound: int, max_tokens: int, attempts: int
) -> float | None:
    """Upper bound in USD of one call over ``attempts`` billed attempts; None without prices."""
    if not profile or "input_usd_per_mtok" not in profile or "output_usd_per_mtok" not in profile:
        return None
    one = (
        prompt_bound * profile["input_usd_per_mtok"] + max_tokens * profile["output_usd_per_mtok"]
    ) / 1e6
    return one * attempts


@dataclass(frozen=True)
class CallBound:
    """What one call of a pair can cost at most: its model and worst-case tokens."""

    model: str
    list_worst: float | None
    """USD at the catalog's list prices over every attempt; None without list prices."""
    prompt_tokens: int
    """Most prompt tokens of one attempt (:func:`prompt_tokens_bound`)."""
    output_tokens: int
    """Most completion tokens of one attempt (``max_tokens``)."""
    attempts: int


@dataclass(frozen=True)
class Reservation:
    """What a pair holds against the cap until it settles."""

    held: float
    probes: tuple[str, ...] = ()
    """Models whose first bill this pair is waiting for (one such pair at a time)."""


@dataclass
class SpendGuard:
    """Money spent, reserved and possibly billed, against an optional cap (USD).

    A pair reserves its worst case before its first call and settles to what it really cost
    when done. A pair that does not fit under the cap waits for reservations in flight to
    settle; when nothing is in flight and it still does not fit, the run stops.

    Providers may bill above the catalog's list price (or bill a model listed as free), so
    worst cases at list prices alone do not hold the cap. The guard learns from every bill:

    * until a model's first bill is seen, only one pair of that model is in flight (its
      probe), so at most that one pair is run at an unknown price;
    * after it, the model's worst cases are scaled by the highest billed / list-price ratio
      it has shown, or, for a model without a (non-zero) list price, priced at the highest
      USD per prompt and per completion token its bills imply.

    The cap then holds as long as each model's first bill fits in the room left and later
    bills stay within those learned prices; :attr:`crossed` says when it did not.
    """

    cap: float | None = None
    answers: float = 0.0
    """USD billed for answers."""
    judge: float = 0.0
    """USD billed for judge calls."""
    possibly_billed: float = 0.0
    """Worst cases of calls that timed out or lost their connection (billing unknown)."""
    reserved: float = 0.0
    price_factor: dict[str, float] = field(default_factory=dict)
    """Per model, the highest billed / list-price ratio above 1 seen (a dearer provider)."""
    token_rates: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per model without a non-zero list price: the highest USD per prompt token and per
    completion token its bills imply (each bill divided by either count bounds that price)."""
    billed_models: set[str] = field(default_factory=set)
    """Models with at least one bill seen."""
    _probes: dict[str, int] = field(default_factory=dict, repr=False)
    _in_flight: int = 0
    _settled: asyncio.Condition | None = field(default=None, repr=False)

    @property
    def spent(self) -> float:
        """USD billed so far (answers and judge)."""
        return self.answers + self.judge

    @property
    def crossed(self) -> bool:
        """Whether what was billed (and possibly billed) went over the cap."""
        return self.cap is not None and self.spent + self.possibly_billed > self.cap

    def crossing(self) -> str | None:
        """The summary line of a run whose bills went over its cap (None if they did not)."""
        if not self.crossed:
            return None
        total = self.spent + self.possibly_billed
        dearest = max(self.price_factor.items(), key=lambda kv: kv[1], default=None)
        why = (
            f"{dearest[0]} billed up to {dearest[1]:.3g}x its list price"
            if dearest
            else "bills came above the worst cases at list prices"
        )
        return (
            f"  crossed --max-spend ${self.cap:g}: ${total:.6g} billed or possibly billed; "
            f"{why} (a model's first pair runs before its real price is known)"
        )

    def _condition(self) -> asyncio.Condition:
        if self._settled is None:
            self._settled = asyncio.Condition()
        return self._settled

    def worst_of(self, call: CallBound) -> float:
        """A call's worst case at the prices learned so far (list prices until a bill)."""
        held = (call.list_worst or 0.0) * self.price_factor.get(call.model, 1.0)
        rates = self.token_rates.get(call.model)
        if rates is not None and not call.list_worst:
            per_attempt = call.prompt_tokens * rates[0] + call.output_tokens * rates[1]
            held = max(held, per_attempt * call.attempts)
        return held

    async def reserve(self, calls: Sequence[CallBound]) -> Reservation | None:
        """Hold a pair's worst case at the prices learned so far.

        Returns:
            The reservation to settle, or None when it can never fit (stop launching).
        """
        if self.cap is None:
            self._in_flight += 1
            return Reservation(sum(self.worst_of(c) for c in calls))
        condition = self._condition()
        async with condition:
            while True:
                held = sum(self.worst_of(c) for c in calls)
                probes = tuple(dict.fromkeys(c.model for c in calls if self._unbilled(c.model)))
                fits = self.spent + self.possibly_billed + self.reserved + held <= self.cap
                if fits and not any(self._probes.get(m) for m in probes):
                    break
                if self._in_flight == 0:
                    return None
                await condition.wait()
            for model in probes:
                self._probes[model] = self._probes.get(model, 0) + 1
            self.reserved += held
            self._in_flight += 1
            return Reservation(held, probes)

    def _unbilled(self, model: str) -> bool:
        return model not in self.billed_models

    async def settle(
        self,
        reservation: Reservation,
        *,
        answer: float = 0.0,
        judge: float = 0.0,
        unknown: float = 0.0,
    ) -> None:
        """Release a reservation and add what was billed.

        ``unknown`` is the worst case of a call that timed out, lost its connection or was
        billed a refused amount: it may have been billed, so it stays counted against the cap.
        """
        self.answers += answer
        self.judge += judge
        self.possibly_billed += unknown
        self._in_flight -= 1
        for model in reservation.probes:
            self._probes[model] -= 1
        if self.cap is None:
            return
        self.reserved = max(0.0, self.reserved - reservation.held)
        condition = self._condition()
        async with condition:
            condition.notify_all()

    def observe(
        self,
        model: str,
        billed: float | None,
        list_price: float | None,
        tokens: tuple[int | None, int | None],
    ) -> None:
        """Learn from one bill: a price above the list, or the price of an unlisted model.

        Args:
            model: The model billed.
            billed: USD billed (``usage.cost``); None when the endpoint did not say, and the
                cost was taken from list prices (nothing to learn).
            list_price: The same call at list prices (None without list prices).
            tokens: Its prompt and completion tokens.
        """
        self.billed_models.add(model)
        if billed is None or billed <= 0:
            return
        if list_price:
            if billed > list_price:
                factor = max(self.price_factor.get(model, 1.0), billed / list_price)
                self.price_factor[model] = factor
            return
        prompt, completion = tokens
        old = self.token_rates.get(model, (0.0, 0.0))
        self.token_rates[model] = (
            max(old[0], billed / max(prompt or 1, 1)),
            max(old[1], billed / max(completion or 1, 1)),
        )
