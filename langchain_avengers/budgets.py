"""Budgets: what routing needs from a spend pacer, and the expected cost of one call.

:class:`AlphaSource` is the interface the chat model and the agent middleware call (a
``SpendPacer`` satisfies it); :func:`expected_call_cost` is what ``max_cost_per_call`` and an
agent run's ``max_run_cost`` compare with their caps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["AlphaSource", "check_pacer", "expected_call_cost"]


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


def expected_call_cost(
    prompt_tokens: int, profile: Mapping[str, Any] | None, calibration_cost: float
) -> float | None:
    """USD a call is expected to cost on one model, or ``None`` without an input price.

    The estimated prompt tokens at the model's input list price, plus the model's mean cost
    per answer on the query's nearest calibration clusters (the router's ``expected_cost``).
    That second part already paid for the calibration queries' own prompts, so the sum
    counts a short prompt twice: conservative, as a cap should be.

    Args:
        prompt_tokens: Estimated input tokens of the call (messages and tool schemas).
        profile: The model's profile (``input_usd_per_mtok``); ``None`` if unknown.
        calibration_cost: The router's expected USD per answer of the model for this query.
    """
    price = (profile or {}).get("input_usd_per_mtok")
    if price is None:
        return None
    return prompt_tokens * float(price) / 1e6 + float(calibration_cost)
