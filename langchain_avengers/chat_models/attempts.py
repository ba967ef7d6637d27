"""One call's routing plan: the models to try in order, retries, fallbacks and what to report.

Retry policy: a transient failure (5xx, 408, 429, a dropped connection, a broken HTTP 200
answer) retries the same model up to ``max_retries`` times, after 0.5 s, 1 s, 2 s... or after
the provider's ``Retry-After``, never waiting more than ``MAX_RETRY_WAIT_S`` at once; a longer
``Retry-After``, a timeout, or OpenRouter's "no endpoint" 404 goes to the next-best model at
once. At most ``max_fallbacks`` other models are tried. A broken HTTP 200 answer is an HTML
page, an error object, no choices, or a stream without one answer event (see
:mod:`langchain_avengers.openrouter.answers`). The whole table of faults is in
``docs/explanation/failures.md``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from langchain_avengers.openrouter.errors import Failure, classify, describe_failure, name_the_url

__all__ = ["MAX_RETRY_WAIT_S", "Plan"]

MAX_RETRY_WAIT_S = 5.0
"""Longest single wait before retrying the same model."""
RETRY_BACKOFF_S = 0.5
TOP_CANDIDATES = 5
"""Candidates listed in the run's LangSmith metadata (the answer's metadata has them all)."""

T = TypeVar("T")


@dataclass
class Plan:
    """The models to try, in order, and the failures met so far."""

    order: list[str]
    summary: dict[str, Any]
    """The decision as reported in ``response_metadata["avengers"]``."""
    candidates: dict[str, dict[str, Any]]
    max_fallbacks: int
    max_retries: int
    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    """Failures after which the next model was tried."""
    retries: list[dict[str, Any]] = field(default_factory=list)
    """Failures after which the same model was tried again."""
    _position: int = 0
    _retry: int = 0

    def fresh(self) -> Plan:
        """The same plan with no attempt made yet (for a call that reuses a decision)."""
        return replace(self, fallbacks=[], retries=[], _position=0, _retry=0)

    @property
    def first_model(self) -> str:
        """The model the router chose (or the pinned one), before any fallback."""
        return self.order[0]

    def attempts(self) -> Iterator[tuple[str, bool]]:
        """``(model, first try of this model)`` until a caller stops or ``after_failure`` raises."""
        while True:
            yield self.order[self._position], self._retry == 0

    def after_failure(self, model: str, error: Exception) -> float:
        """Seconds to wait before the next attempt; re-raise when there is none.

        Raises:
            Exception: ``error`` itself (with a note listing the models tried, Python 3.11+)
                when it is not retryable or no retry and no fallback is left.
        """
        failure = classify(error)
        if not failure.retryable:
            raise self._noted(error, model)
        wait = self._same_model_wait(failure)
        if wait is not None:
            self._retry += 1
            self.retries.append(describe_failure(model, error))
            return wait
        if self._position + 1 >= len(self.order) or len(self.fallbacks) >= self.max_fallbacks:
            raise self._noted(error, model)
        self.fallbacks.append(describe_failure(model, error))
        self._position += 1
        self._retry = 0
        return 0.0

    def _same_model_wait(self, failure: Failure) -> float | None:
        if not failure.same_model or self._retry >= self.max_retries:
            return None
        if failure.retry_after is not None:
            return failure.retry_after if failure.retry_after <= MAX_RETRY_WAIT_S else None
        return min(RETRY_BACKOFF_S * 2**self._retry, MAX_RETRY_WAIT_S)

    def _noted(self, error: Exception, model: str) -> Exception:
        error = name_the_url(error)
        tried = [*self.fallbacks, *self.retries]
        if tried and hasattr(error, "add_note"):  # Python 3.11+
            listed = ", ".join(f"{f['model']} ({f['error']})" for f in tried)
            error.add_note(f"avengers: tried {listed} before {model} failed too")
        return error

    def report(self, model: str) -> dict[str, Any]:
        """The decision as seen when ``model`` is tried (after any fallbacks so far)."""
        chosen = self.candidates.get(model, {})
        return {
            **self.summary,
            "model": model,
            "expected_cost": chosen.get("expected_cost"),
            "expected_accuracy": chosen.get("expected_accuracy"),
            "fallbacks": list(self.fallbacks),
            "retries": list(self.retries),
        }

    def run_metadata(self) -> dict[str, Any]:
        """The decision as flat run-metadata keys LangSmith can filter on.

        ``avengers_candidates`` lists the best :data:`TOP_CANDIDATES` with their router
        ``score`` (compare scores within one decision only: under the default utility scoring
        it is ``expected_accuracy - price * expected_cost`` and often negative; see
        ``CandidateScore.score``), ``expected_accuracy`` in [0, 1] and ``expected_cost`` in
        USD per call.

        ``avengers_propensity`` is the probability with which ``avengers_model`` was chosen
        (1 without exploration; ``None`` for a pinned or sticky call, which the router did not
        choose), ``avengers_explored`` whether exploration sent the call away from the
        router's choice, ``avengers_explore`` the exploration rate and ``avengers_router``
        the router's data fingerprint (to tell the logs of different routers apart).
        """
        return {
            "avengers_model": self.first_model,
            "avengers_alpha": self.summary["alpha"],
            "avengers_routed": self.summary["routed"],
            "avengers_nearest_clusters": self.summary["nearest_clusters"],
            "avengers_candidates": [
                {k: c[k] for k in ("model", "score", "expected_accuracy", "expected_cost")}
                for c in self.summary["candidates"][:TOP_CANDIDATES]
            ],
            "avengers_excluded": dict(self.summary["excluded"]),
            "avengers_required_capabilities": list(self.summary["required_capabilities"]),
            "avengers_max_cost_per_call": self.summary["max_cost_per_call"],
            "avengers_over_cost_cap": dict(self.summary["over_cost_cap"]),
            "avengers_pinned": (self.summary["pinned"] or {}).get("source"),
            "avengers_explore": self.summary.get("explore", 0.0),
            "avengers_propensity": self.summary.get("propensity"),
            "avengers_explored": self.summary.get("explored", False),
            "avengers_router": self.summary.get("router_fingerprint"),
            "avengers_pin_broken": [
                f"{b['source']} pin on {b['model']}: {b['reason']}"
                for b in self.summary["pin_broken"]
            ],
        }


def first_answer(
    plan: Plan, attempt: Callable[[str], T], on_new_model: Callable[[str], None] | None = None
) -> tuple[str, T]:
    """The plan's retry and fallback loop: ``attempt(model)`` until one succeeds.

    ``on_new_model`` hears each model before its first try (the route event). Waits between
    attempts are the plan's (``Retry-After``, backoff); the last failure is raised.

    Returns:
        The model that answered and what ``attempt`` returned for it.
    """
    for model, first_try in plan.attempts():
        if first_try and on_new_model is not None:
            on_new_model(model)
        try:
            return model, attempt(model)
        except Exception as error:
            time.sleep(plan.after_failure(model, error))
    raise AssertionError  # attempts() ends only by a return or after_failure raising


async def afirst_answer(
    plan: Plan,
    attempt: Callable[[str], Awaitable[T]],
    on_new_model: Callable[[str], Awaitable[None]] | None = None,
) -> tuple[str, T]:
    """Async :func:`first_answer`: waits between attempts do not block the event loop."""
    for model, first_try in plan.attempts():
        if first_try and on_new_model is not None:
            await on_new_model(model)
        try:
            return model, await attempt(model)
        except Exception as error:
            await asyncio.sleep(plan.after_failure(model, error))
    raise AssertionError
