"""A stand-in spend pacer for wiring tests: alphas from a script, every recorded cost kept.

The real ``SpendPacer`` is tested on its own; these tests check
that the chat model and the middleware ask it for alpha only when a call gives none, and tell it
each answered call's cost exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


class ScriptedPacer:
    """Hands out ``alphas`` in turn (cycling) and keeps what it is told."""

    def __init__(self, alphas: Sequence[float]) -> None:
        self.alphas = list(alphas)
        self.asked = 0
        self.costs: list[float] = []
        self._lock = threading.Lock()

    def alpha(self) -> float:
        with self._lock:
            value = self.alphas[self.asked % len(self.alphas)]
            self.asked += 1
            return value

    def record(self, cost_usd: float) -> None:
        with self._lock:
            self.costs.append(cost_usd)
