"""USD amounts as people read them, the same wherever the package prints one."""

from __future__ import annotations

import math


def format_usd(amount: float) -> str:
    """``$`` and four significant digits in plain notation: tiny caps stay readable.

    ``1e-09`` prints as ``$0.000000001`` (six fixed decimals made it ``$0.000000``), ``0.0189451``
    as ``$0.01895`` and ``1.0`` as ``$1``.
    """
    if amount == 0 or not math.isfinite(amount):
        return f"${amount:g}"
    decimals = min(15, max(0, 3 - math.floor(math.log10(abs(amount)))))
    return "$" + f"{amount:.{decimals}f}".rstrip("0").rstrip(".")
