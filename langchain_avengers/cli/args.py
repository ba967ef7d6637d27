"""Argument types of the ``avengers`` command: each parses one value or refuses it in one line.

argparse turns an :class:`argparse.ArgumentTypeError` into ``avengers <command>: error: ...``
and exit status :data:`EXIT_BAD_INPUT`, as the command does for any other bad input. Each type
also turns a value it cannot convert into that error: argparse's own message would name the
function (``invalid _alpha value: 'x'``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TypeVar

EXIT_BAD_INPUT = 2

_Value = TypeVar("_Value", int, float)


def _accepted(value: _Value, ok: bool, message: str) -> _Value:
    """``value`` if ``ok``, else the argparse error ``message``."""
    if not ok:
        raise argparse.ArgumentTypeError(message)
    return value


def _number(text: str, kind: type[_Value], expected: str) -> _Value:
    """``text`` as an int or float, or the argparse error naming what was ``expected``."""
    try:
        return kind(text)
    except ValueError:
        msg = f"expected {expected}, got {text}"
        raise argparse.ArgumentTypeError(msg) from None


def _alpha(text: str) -> float:
    """An alpha in [0, 1]."""
    value = _number(text, float, "an alpha in [0, 1]")
    return _accepted(value, 0 <= value <= 1, f"alpha must be in [0, 1], got {text}")


def _fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    value = _number(text, float, "a fraction strictly between 0 and 1")
    return _accepted(
        value, 0 < value < 1, f"expected a fraction strictly between 0 and 1, got {text}"
    )


def _confidence(text: str) -> float:
    """A probability in [0.5, 1)."""
    value = _number(text, float, "a probability in [0.5, 1)")
    return _accepted(value, 0.5 <= value < 1, f"expected a probability in [0.5, 1), got {text}")


def _positive_float(text: str) -> float:
    """A number above 0."""
    value = _number(text, float, "a positive number")
    return _accepted(value, value > 0, f"expected a positive number, got {text}")


def _non_negative_float(text: str) -> float:
    """A finite number of at least 0."""
    value = _number(text, float, "a number >= 0")
    return _accepted(
        value, math.isfinite(value) and value >= 0, f"expected a number >= 0, got {text}"
    )


def _positive_int(text: str) -> int:
    """An integer of at least 1."""
    value = _number(text, int, "a positive integer")
    return _accepted(value, value >= 1, f"expected a positive integer, got {text}")


def _non_negative_int(text: str) -> int:
    """An integer of at least 0."""
    value = _number(text, int, "0 or a positive integer")
    return _accepted(value, value >= 0, f"expected 0 or a positive integer, got {text}")


def _n_clusters(text: str) -> int | str:
    """``auto`` or a positive integer."""
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except (ValueError, argparse.ArgumentTypeError):
        msg = f"expected 'auto' or a positive integer, got {text}"
        raise argparse.ArgumentTypeError(msg) from None


def _model_list(text: str) -> list[str]:
    """Comma-separated model ids, at least one."""
    models = [m.strip() for m in text.split(",") if m.strip()]
    if not models:
        msg = f"expected comma-separated model ids, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return models


def _png_path(text: str) -> Path:
    """A path ending in ``.png`` (the plots are PNG images)."""
    path = Path(text)
    if path.suffix.lower() != ".png":
        msg = f"expected a .png path (the plots are PNG images), got {text}"
        raise argparse.ArgumentTypeError(msg)
    return path
