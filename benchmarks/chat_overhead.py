"""Added latency of AvengersChatModel.invoke over calling the chosen ChatOpenAI directly.

Both run against the offline OpenRouter (langchain_avengers.testing), in
one process and interleaved query by query, so server time cancels out in the difference.
Target on a 2-core machine: p50 overhead <= 2 ms.

    python benchmarks/chat_overhead.py [--n 400]
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from langchain_openai import ChatOpenAI

from langchain_avengers import AvengersChatModel
from langchain_avengers.testing import offline_openrouter

TARGET_P50_MS = 2.0
TOPICS = ("algebra", "history", "python", "chemistry", "poetry", "geography", "law", "music")


def queries(n: int) -> list[str]:
    return [f"Question {i} about {TOPICS[i % len(TOPICS)]}: explain item {i}." for i in range(n)]


def timed_ms(call: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1e6


def measure(n: int) -> dict[str, list[float]]:
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    with offline_openrouter() as server:
        routed = AvengersChatModel(base_url=server.base_url, api_key="bench", max_retries=0)
        direct = {
            model: ChatOpenAI(
                model=model,
                base_url=server.base_url,
                api_key="bench",
                max_retries=0,
                stream_usage=True,
            )
            for model in routed.pool
        }
        for text in queries(20):  # warm-up: imports, connection pools, embedder load
            chosen = routed.invoke(text).response_metadata["model_name"]
            direct[chosen].invoke(text)
        times: dict[str, list[float]] = {"routed": [], "direct": [], "overhead": []}
        for text in queries(n):
            chosen = routed.fitted_router.route(text, routed.alpha).model
            direct_ms = timed_ms(partial(direct[chosen].invoke, text))
            routed_ms = timed_ms(partial(routed.invoke, text))
            times["direct"].append(direct_ms)
            times["routed"].append(routed_ms)
            times["overhead"].append(routed_ms - direct_ms)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="measured calls of each kind")
    args = parser.parse_args()
    times = measure(args.n)
    p50 = statistics.median(times["overhead"])
    print("## Chat-model overhead (`python benchmarks/chat_overhead.py`)\n")
    print(
        f"{args.n} interleaved calls each, local test server, Python "
        f"{platform.python_version()}, {platform.machine()}\n"
    )
    print("| measure | p50 ms | p90 ms | p99 ms |")
    print("|---|---|---|---|")
    for name in ("direct", "routed", "overhead"):
        values = np.array(times[name])
        p = np.percentile(values, [50, 90, 99])
        print(f"| {name} | {p[0]:.2f} | {p[1]:.2f} | {p[2]:.2f} |")
    verdict = "PASS" if p50 <= TARGET_P50_MS else "MISS"
    print(f"\np50 overhead {p50:.2f} ms (target <= {TARGET_P50_MS} ms): {verdict}")
    print(
        "\n'direct' = ChatOpenAI for the model the router picks; 'routed' = "
        "AvengersChatModel.invoke (embedding, routing, route event, metadata, cost); "
        "'overhead' = per-query difference."
    )


if __name__ == "__main__":
    main()
