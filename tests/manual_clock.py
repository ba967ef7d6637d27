"""A clock to inject where the code takes ``clock=`` (pins, spend pacing): time stands still
until a test moves ``now``."""

from __future__ import annotations


class ManualClock:
    """Returns ``now`` when called; tests set or advance it by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
