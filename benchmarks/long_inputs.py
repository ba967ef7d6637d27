"""Long inputs: time and memory of routing, fitting and chat calls as one text grows.

Routing and fitting embed at most ``MAX_EMBEDDED_CHARS`` characters of each text (its head and
tail), so time and peak memory should stay flat from 1 KB to 4 MB. Each measurement runs in a
fresh process, so its peak RSS (``ru_maxrss``) is its own; "+peak RSS" is that peak minus the
RSS just before the measured step (after imports, router load and a warm-up route).

- route: ``load_default_router().route(text)`` (default WordLlama embedder);
- fit: ``ClusterRouter().fit(...)`` on ``tests/fixtures/small.jsonl`` (90 queries) with its
  first query replaced by the long text;
- abatch: eight long prompts through ``AvengersChatModel.abatch`` against the local test
  server (langchain_avengers.testing), beside a plain ``ChatOpenAI``; "loop stall" is the
  longest the event loop went without running a 1 ms ticker;
- tokens: ``AvengersChatModel.get_num_tokens_from_messages`` (the estimate routing uses).

    python benchmarks/long_inputs.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "fixtures" / "small.jsonl"
SIZES = {"1 KB": 1_000, "1 MB": 1_000_000, "4 MB": 4_000_000}
SENTENCE = "The committee reviewed the quarterly figures and asked for a summary. "


def long_text(n_chars: int) -> str:
    return (SENTENCE * (n_chars // len(SENTENCE) + 1))[:n_chars]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KB on Linux


def measured(step: Callable[[], Any]) -> dict[str, float]:
    before = rss_mb()
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": max(0.0, peak_rss_mb() - before)}


# ---------------------------------------------------------------- children (fresh processes)


def child_route(n_chars: int) -> dict[str, float]:
    from langchain_avengers import load_default_router

    router = load_default_router()
    router.route("warm-up: load the embedder")
    text = long_text(n_chars)
    return measured(lambda: router.route(text))


def child_fit(n_chars: int) -> dict[str, float]:
    import dataclasses

    from langchain_avengers import CalibrationData, ClusterRouter, load_default_router

    load_default_router().route("warm-up: load the embedder")
    import sklearn.cluster  # noqa: F401  (imported by the first fit: ~1 s, not measured)

    data = CalibrationData.from_path(SMALL)
    data = dataclasses.replace(data, queries=[long_text(n_chars), *data.queries[1:]])
    return measured(lambda: ClusterRouter().fit(data))


def child_tokens(n_chars: int) -> dict[str, float]:
    from langchain_core.messages import HumanMessage

    from langchain_avengers import AvengersChatModel

    llm = AvengersChatModel(api_key="bench")
    messages = [HumanMessage(long_text(n_chars))]
    return measured(lambda: llm.get_num_tokens_from_messages(messages))


async def _stall_during(work: Any) -> float:
    """Longest gap between ticks of a 1 ms ticker while ``work`` runs."""
    longest, done = 0.0, False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    await work
    done = True
    await tick
    return longest


def child_abatch(n_chars: int, kind: str, url: str) -> dict[str, float]:
    from langchain_openai import ChatOpenAI

    from langchain_avengers import AvengersChatModel

    common = {"base_url": url, "api_key": "bench", "max_retries": 0}
    llm: Any = (
        AvengersChatModel(**common)
        if kind == "avengers"
        else ChatOpenAI(model="google/gemini-2.5-flash", **common)
    )
    prompts = [f"{i}: " + long_text(n_chars) for i in range(8)]
    result: dict[str, float] = {}

    async def run() -> None:
        await llm.abatch([f"warm-up {i}: connections, embedder" for i in range(8)])
        before = rss_mb()
        start = time.perf_counter()
        result["stall"] = await _stall_during(llm.abatch(prompts))
        result["seconds"] = time.perf_counter() - start
        result["peak_mb"] = max(0.0, peak_rss_mb() - before)

    asyncio.run(run())
    return result


CHILDREN = {"route": child_route, "fit": child_fit, "tokens": child_tokens}


def in_child(*args: str) -> dict[str, float]:
    """Run one measurement in a fresh process, on the package of the checkout holding this file."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        msg = f"child {args} failed:\n{done.stderr}"
        raise SystemExit(msg)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def table(title: str, rows: dict[str, dict[str, float]], extra: str = "") -> None:
    print(f"### {title}\n")
    stall = "| loop stall s " if extra else ""
    print(f"| text | seconds | +peak RSS MB {stall}|")
    print("|---|---|---" + ("|---" if extra else "") + "|")
    for label, r in rows.items():
        cells = [f"{r['seconds']:.3f}", f"{r['peak_mb']:.0f}"]
        if extra:
            cells.append(f"{r['stall']:.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, n_chars, *rest = args.child
        if name == "abatch":
            print(json.dumps(child_abatch(int(n_chars), *rest)))
        else:
            print(json.dumps(CHILDREN[name](int(n_chars))))
        return

    from langchain_avengers.routing.embeddings import MAX_EMBEDDED_CHARS
    from langchain_avengers.testing import offline_openrouter

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print("## Long inputs (`python benchmarks/long_inputs.py`)\n")
    print(
        f"One text of each size (ASCII, so characters = bytes); each row a fresh process. "
        f"Embedded bound: {MAX_EMBEDDED_CHARS:,} characters. Python "
        f"{platform.python_version()}, {os.cpu_count()} cores, load average {load}.\n"
    )
    for name, title in (("route", "route one message"), ("fit", "fit, one long query of 90")):
        table(title, {label: in_child(name, str(n)) for label, n in SIZES.items()})
    table(
        "token estimate of one message",
        {label: in_child("tokens", str(n)) for label, n in SIZES.items()},
    )
    with offline_openrouter() as server:
        rows = {}
        for label in ("1 KB", "1 MB"):
            for kind, name in (("avengers", "AvengersChatModel"), ("plain", "ChatOpenAI")):
                rows[f"{label}, {name}"] = in_child(
                    "abatch", str(SIZES[label]), kind, server.base_url
                )
        table("abatch of eight prompts, local test server", rows, extra="stall")


if __name__ == "__main__":
    main()
