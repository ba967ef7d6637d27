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


@dataclass
class SpendGuard:
    """Money spent, reserved and possibly billed, against an optional cap (USD).

    A pair reserves its worst case before its first call and settles to what it really cost
    when done. A pair that does not fit under the cap waits for reservations in flight to
    settle; when nothing is in flight and it still does not fit, the run stops: the cap is
    never crossed as long as the worst cases hold.
    """

    cap: float | None = None
    answers: float = 0.0
    """USD billed for answers."""
    judge: float = 0.0
    """USD billed for judge calls."""
    possibly_billed: float = 0.0
    """Worst cases of calls that timed out or lost their connection (billing unknown)."""
    reserved: float = 0.0
    price_factor: float = 1.0
    """Highest billed / list-price ratio seen (a provider dearer than the catalog's price);
    later worst cases are scaled by it."""
    _in_flight: int = 0
    _settled: asyncio.Condition | None = field(default=None, repr=False)

    @property
    def spent(self) -> float:
        """USD billed so far (answers and judge)."""
        return self.answers + self.judge

    def _condition(self) -> asyncio.Condition:
        if self._settled is None:
            self._settled = asyncio.Condition()
        return self._settled

    async def reserve(self, worst: float) -> float | None:
        """Hold a pair's worst case (scaled by :attr:`price_factor`).

        Returns:
            The amount held, or None when it can never fit (stop launching).
        """
        held = worst * self.price_factor
        if self.cap is None:
            self._in_flight += 1
            return held
        condition = self._condition()
        async with condition:
            while self.spent + self.possibly_billed + self.reserved + held > self.cap:
                if self._in_flight == 0:
                    return None
                await condition.wait()
            self.reserved += held
            self._in_flight += 1
            return held

    async def settle(
        self, held: float, *, answer: float = 0.0, judge: float = 0.0, unknown: float = 0.0
    ) -> None:
        """Release a reservation and add what was billed.

        ``unknown`` is the worst case of a call that timed out or lost its connection: it may
        have been billed, so it stays counted against the cap.
        """
        self.answers += answer
        self.judge += judge
        self.possibly_billed += unknown
        self._in_flight -= 1
        if self.cap is None:
            return
        self.reserved = max(0.0, self.reserved - held)
        condition = self._condition()
        async with condition:
            condition.notify_all()

    def observe_price(self, billed: float | None, list_price: float | None) -> None:
        """Learn when a provider bills above the catalog's list price."""
        if billed and list_price and billed > list_price:
            self.price_factor = max(self.price_factor, billed / list_price)
