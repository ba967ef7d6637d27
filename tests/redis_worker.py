"""One worker process of the shared-state test: calls the local OpenRouter server with pins and
a pacer kept on Redis, and prints what it got as JSON lines.

``python tests/redis_worker.py BASE_URL REDIS_URL MODE WORKER CALLS THREADS TARGET``; ``MODE`` is
``conversations`` (calls on sessions every worker shares, alternating alpha 0 and 1 so the
first calls of a conversation race for its pin) or ``paced`` (no session: alpha from the pacer).
Each output line is ``{"session", "model", "cost", "alpha"}``.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_chat import SECRET

from langchain_avengers import AvengersChatModel
from langchain_avengers.policies.pacing import SpendPacer
from langchain_avengers.policies.redis_store import RedisPacerState, RedisPinStore

SESSIONS = 25
WINDOW_CALLS = 20


def question(i: int) -> str:
    """Varied queries, so the router's choices and the costs vary."""
    topics = ["prime numbers", "a haiku about rain", "the French revolution", "sorting in C"]
    return f"Question {i}: explain {topics[i % len(topics)]} in detail."


def main(argv: list[str]) -> None:
    base_url, redis_url, mode, worker = argv[0], argv[1], argv[2], int(argv[3])
    calls, threads, target = int(argv[4]), int(argv[5]), float(argv[6])
    pacer = SpendPacer(
        usd_per_1k_calls=target, window_calls=WINDOW_CALLS, store=RedisPacerState(redis_url)
    )
    llm = AvengersChatModel(
        base_url=base_url,
        api_key=SECRET,
        max_retries=0,
        timeout=10,
        pacer=pacer,
        pin_conversations=True,
        pin_store=RedisPinStore(redis_url),
    )

    def call(i: int) -> dict[str, Any]:
        if mode == "conversations":
            session = f"s{i % SESSIONS}"
            alpha = float((i + worker) % 2)
            message = llm.invoke(question(0), alpha=alpha, session_id=session)
        else:
            session = None
            message = llm.invoke(question(i * 4 + worker))
        info = message.response_metadata["avengers"]
        return {
            "session": session,
            "model": message.response_metadata["model_name"],
            "cost": (message.usage_metadata or {}).get("total_cost"),
            "alpha": info["alpha"],
        }

    with ThreadPoolExecutor(threads) as pool:
        for line in pool.map(call, range(calls)):
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
