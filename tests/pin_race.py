"""Many threads racing for conversation pins through an ``AvengersChatModel`` (shared by the
pin tests of each store)."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local_chat import make_llm

from langchain_avengers.policies.pins import PinStore
from langchain_avengers.testing import OfflineOpenRouter

QUERY = "Prove that there are infinitely many prime numbers."
ALPHAS = (0.0, 1.0, 0.0, 1.0)
"""A conversation's concurrent first calls: cheapest and most accurate routing alternate."""
SESSIONS = 256
THREADS = 64


def race(server: OfflineOpenRouter, store: PinStore) -> tuple[dict[str, set[str]], PinStore]:
    """Answer ``len(ALPHAS)`` calls of each of :data:`SESSIONS` conversations on
    :data:`THREADS` threads; the models that answered each conversation."""
    llm = make_llm(server, pin_conversations=True, pin_store=store)
    jobs = [(f"s{s}", alpha) for s in range(SESSIONS) for alpha in ALPHAS]

    def call(job: tuple[str, float]) -> tuple[str, Any]:
        session, alpha = job
        return session, llm.invoke(QUERY, alpha=alpha, session_id=session)

    answered: dict[str, set[str]] = defaultdict(set)
    with ThreadPoolExecutor(THREADS) as pool:
        for session, message in pool.map(call, jobs):
            answered[session].add(message.response_metadata["model_name"])
    return answered, store
