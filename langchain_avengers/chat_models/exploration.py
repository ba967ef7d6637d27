"""Exploration: now and then, a call goes to another capable model, with its propensity.

A router only ever sees feedback on the models it chose. With exploration rate ``explore``,
a routed call goes, with that probability, to a candidate drawn uniformly from those that can
serve it (the router's choice included), so every candidate has a chance of at least
``explore / n_candidates``; the chosen model's propensity
``(1 - explore) * 1[router's choice] + explore / n_candidates`` goes in the run metadata, so
what is learnt from the call's feedback can be weighted by it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Exploration", "exploration_report", "explore"]

_SHARED_RNG = random.Random()  # noqa: S311 (exploration, not cryptography)
"""Exploration draws of callers without their own seeded ``random.Random``."""


@dataclass(frozen=True)
class Exploration:
    """An exploration rate and the source of its draws."""

    rate: float = 0.0
    """Probability, in [0, 1], of sending a call to a uniformly drawn candidate."""
    rng: random.Random | None = None
    """Source of the draws (seed it for reproducible tests); ``None``: a shared one."""


def explore(ranked: Sequence[str], exploration: Exploration) -> tuple[list[str], float]:
    """The order to try ``ranked`` (best first) in, and the first model's propensity.

    With probability ``exploration.rate`` a candidate drawn uniformly from ``ranked`` (the
    router's choice included) goes first, the rest keep their order.
    """
    rate = exploration.rate
    if rate <= 0.0 or len(ranked) == 1:
        return list(ranked), 1.0
    draws = exploration.rng if exploration.rng is not None else _SHARED_RNG
    chosen = draws.choice(list(ranked)) if draws.random() < rate else ranked[0]
    propensity = (1.0 - rate) * (chosen == ranked[0]) + rate / len(ranked)
    return [chosen, *(m for m in ranked if m != chosen)], propensity


def exploration_report(
    exploration: Exploration, propensity: float | None, first: str, greedy: str, router: Any
) -> dict[str, Any]:
    """The plan summary's exploration keys (``avengers_*`` run metadata, see ``Plan``).

    ``router`` is the fitted ``ClusterRouter``: its data fingerprint tells logs apart.
    """
    return {
        "explore": exploration.rate,
        "propensity": propensity,
        "explored": propensity is not None and first != greedy,
        "router_fingerprint": router.data_fingerprint_,
    }
