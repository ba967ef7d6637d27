"""Which billed costs and list prices can be right: one rule for answers, calibration, catalogs.

OpenRouter reports what a call was billed as ``usage.cost`` (USD) and lists prices per token.
A provider or proxy can send anything there: a string, ``NaN``, ``Infinity``, ``1e308``, a
negative number. Such a figure must never reach an answer's metadata, a spend pacer, a
calibration record or a spend cap, so every reader checks it against the same bounds.
"""

from __future__ import annotations

import math

from langchain_avengers._utils.money import format_usd

__all__ = [
    "MAX_USD_PER_MTOK",
    "MAX_USD_PER_TOKEN",
    "PER_CALL_ALLOWANCE_USD",
    "billed_cost",
    "price_problem",
]

MAX_USD_PER_TOKEN = 1e-3
"""$1,000 per million tokens: above the dearest list price on OpenRouter (o1-pro output,
$600 per million in the bundled catalog)."""
MAX_USD_PER_MTOK = MAX_USD_PER_TOKEN * 1e6
"""The same bound per million tokens (the catalog's unit)."""
PER_CALL_ALLOWANCE_USD = 1.0
"""Room for per-request charges on top of tokens (web search, images)."""


def billed_cost(billed: object, tokens: int) -> tuple[float | None, str | None]:
    """OpenRouter's billed USD if it is a plausible number, else ``None`` and why not.

    Plausible: a number (or a numeric string), finite, not negative, and at most
    :data:`PER_CALL_ALLOWANCE_USD` plus :data:`MAX_USD_PER_TOKEN` per token of the call.

    Args:
        billed: ``usage.cost`` as received (any JSON value; ``None`` when absent).
        tokens: Prompt plus completion tokens of the call.
    """
    if billed is None:
        return None, None
    shown = repr(billed)[:40]
    if isinstance(billed, bool) or not isinstance(billed, (int, float, str)):
        return None, f"usage.cost {shown} is not a number"
    try:
        value = float(billed)
    except ValueError:
        return None, f"usage.cost {shown} is not a number"
    ceiling = PER_CALL_ALLOWANCE_USD + MAX_USD_PER_TOKEN * tokens
    if not math.isfinite(value):
        return None, f"usage.cost {shown} is not finite"
    if value < 0:
        return None, f"usage.cost {shown} is negative"
    if value > ceiling:
        return (
            None,
            f"usage.cost {shown} exceeds {format_usd(ceiling)}, the most {tokens} tokens can cost",
        )
    return value, None


def price_problem(usd_per_mtok: object) -> str | None:
    """Why a list price (USD per million tokens) cannot be right, or ``None`` when it can.

    A price is a number (not a boolean), finite, not negative and at most
    :data:`MAX_USD_PER_MTOK`.
    """
    if isinstance(usd_per_mtok, bool) or not isinstance(usd_per_mtok, (int, float)):
        return f"expected a number of USD per million tokens, got {usd_per_mtok!r}"[:120]
    if not math.isfinite(usd_per_mtok):
        return f"expected a finite price, got {usd_per_mtok!r}"
    if usd_per_mtok < 0:
        return f"expected a price of at least 0, got {usd_per_mtok!r}"
    if usd_per_mtok > MAX_USD_PER_MTOK:
        return (
            f"expected at most ${MAX_USD_PER_MTOK:,.0f} per million tokens (above any "
            f"OpenRouter price), got {usd_per_mtok!r}"
        )
    return None
