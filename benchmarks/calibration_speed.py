"""Speed and memory of ``avengers calibrate`` against the offline OpenRouter.

The offline OpenRouter (``python -m langchain_avengers.testing``) runs in its own process with
an answer key for a synthetic query file (exact, numeric, choice and regex graders; the python
grader's sandbox is timed apart), so its work does not share this process's GIL. For
concurrency 1, 8 and 32: pairs per second of ``calibrate()`` and of bare requests (the same SDK
call with the same concurrency, nothing else), and the per-pair overhead (wall time per pair,
calibrate minus bare). Then 20,000 pairs at concurrency 32 with this process's RSS sampled along
the way.

    python benchmarks/calibration_speed.py [--memory-pairs 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import openai

from langchain_avengers.calibration import ApiSettings, calibrate, load_queries
from langchain_avengers.calibration.sandbox import run_python_tests

ROOT = Path(__file__).resolve().parents[1]
MODELS = [
    "openai/gpt-5",
    "anthropic/claude-sonnet-4.5",
    "qwen/qwen3-235b-a22b-2507",
    "google/gemini-2.5-flash",
]
RUNS = {1: 400, 8: 2000, 32: 4000}
"""Concurrency -> pairs timed."""


def write_queries(path: Path, n: int) -> None:
    kinds = [
        lambda i: {"query": f"What is {i} + {i}?", "reference": 2 * i, "grader": "numeric"},
        lambda i: {"query": f"Name item {i}.", "reference": f"item {i}", "grader": "exact"},
        lambda i: {
            "query": f"Question {i}: pick one. (A) a (B) b (C) c (D) d",
            "reference": "ABCD"[i % 4],
            "grader": {"name": "choice", "choices": "ABCD"},
        },
        lambda i: {
            "query": f"Write code {i} as CODE-{i}.",
            "reference": f"CODE-{i}",
            "grader": {"name": "regex", "pattern": rf"\bCODE-{i}\b"},
        },
    ]
    with path.open("w") as handle:
        for i in range(n):
            row = {**kinds[i % 4](i), "dataset": f"kind{i % 4}", "index": i}
            handle.write(json.dumps(row) + "\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(answer_key: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "langchain_avengers.testing",
            "--port",
            str(port),
            "--quiet",
            "--answer-key",
            str(answer_key),
        ],
        stdout=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/api/v1"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{base_url}/models", timeout=1).read()
            return process, base_url
        except OSError:
            time.sleep(0.05)
    process.kill()
    msg = "the test server did not start"
    raise SystemExit(msg)


async def bare_requests(base_url: str, queries: list, models: list[str], concurrency: int) -> float:
    """Seconds to send the same requests with the same SDK and concurrency, nothing else."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    slots = asyncio.Semaphore(concurrency)

    async def one(query, model: str) -> None:
        async with slots:
            raw = await client.chat.completions.with_raw_response.create(
                model=model, messages=query.messages(), max_tokens=4096, temperature=0
            )
            raw.parse()

    start = time.perf_counter()
    await asyncio.gather(*(one(q, m) for q in queries for m in models))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


def calibrate_run(base_url: str, queries: list, out: Path, concurrency: int) -> float:
    api = ApiSettings(base_url=base_url, api_key="bench", max_retries=0)
    start = time.perf_counter()
    run = calibrate(queries, MODELS, out, api=api, concurrency=concurrency, show_progress=False)
    elapsed = time.perf_counter() - start
    if not run.complete:
        msg = f"incomplete run: {run.describe()}"
        raise SystemExit(msg)
    return elapsed


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """RSS and journal lines (pairs done) every 0.25 s."""

    def __init__(self, journal: Path) -> None:
        super().__init__(daemon=True)
        self.journal = journal
        self.samples: list[tuple[int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            done = self.journal.read_bytes().count(b"\n") if self.journal.exists() else 0
            self.samples.append((done, rss_mib()))


def speed_table(base_url: str, queries: list, workdir: Path) -> list[str]:
    rows = [
        "| concurrency | pairs | calibrate pairs/s | bare requests/s | overhead ms / pair |",
        "|---|---|---|---|---|",
    ]
    asyncio.run(bare_requests(base_url, queries[:20], MODELS, 8))  # warm-up
    for concurrency, pairs in RUNS.items():
        subset = queries[: pairs // len(MODELS)]
        n = len(subset) * len(MODELS)
        bare = asyncio.run(bare_requests(base_url, subset, MODELS, concurrency))
        cal = calibrate_run(base_url, subset, workdir / f"speed{concurrency}.jsonl", concurrency)
        overhead = 1000 * (cal - bare) / n
        rows.append(f"| {concurrency} | {n} | {n / cal:.0f} | {n / bare:.0f} | {overhead:.2f} |")
    return rows


def memory_table(base_url: str, queries: list, workdir: Path, pairs: int) -> list[str]:
    out = workdir / "memory.jsonl"
    sampler = RssSampler(out.with_name(out.name + ".journal"))
    before = rss_mib()
    sampler.start()
    elapsed = calibrate_run(base_url, queries[: pairs // len(MODELS)], out, 32)
    sampler.stop.set()
    sampler.join()
    during = [(done, rss) for done, rss in sampler.samples if 0 < done < pairs]
    rows = ["| pairs done | RSS MiB |", "|---|---|"]
    for fraction in (0.1, 0.25, 0.5, 0.75, 0.9):
        done, rss = min(during, key=lambda s: abs(s[0] - fraction * pairs))
        rows.append(f"| {done:,} | {rss:.0f} |")
    quarter = [rss for done, rss in during if done >= pairs // 4]
    peak_all = max(rss for _, rss in sampler.samples)
    rows += [
        "",
        f"{pairs:,} pairs in {elapsed:.1f} s ({pairs / elapsed:.0f} pairs/s). RSS before the run "
        f"{before:.0f} MiB; while answering from 25% to 90% of the pairs: {min(quarter):.0f} to "
        f"{max(quarter):.0f} MiB (growth {max(quarter) - min(quarter):.1f} MiB); peak including "
        f"the final rebuild of the records {peak_all:.0f} MiB.",
    ]
    return rows


def sandbox_line() -> str:
    runs = 20
    start = time.perf_counter()
    for _ in range(runs):
        run_python_tests("def f(x):\n    return x * 2", ["assert f(2) == 4"])
    per = 1000 * (time.perf_counter() - start) / runs
    return (
        f"The python grader's sandbox (a fresh `python -I` subprocess per answer) takes "
        f"{per:.0f} ms per answer here, sequentially; calibrate runs up to one per CPU at once."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-pairs", type=int, default=20_000)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="calibration-bench-") as tmp:
        workdir = Path(tmp)
        query_file = workdir / "queries.jsonl"
        write_queries(query_file, max(args.memory_pairs, max(RUNS.values())) // len(MODELS))
        queries = load_queries(query_file)
        process, base_url = start_server(query_file)
        try:
            speed = speed_table(base_url, queries, workdir)
            memory = memory_table(base_url, queries, workdir, args.memory_pairs)
        finally:
            process.terminate()
            process.wait()
    print("## Calibration speed (`python benchmarks/calibration_speed.py`)\n")
    print(
        f"Local test server in a subprocess, {len(MODELS)} models, exact/numeric/choice/regex "
        f"graders, journal on local disk; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}.\n"
    )
    print("\n".join(speed))
    print(
        "\n'bare' = the same chat requests through the same `openai` client and concurrency, "
        "without grading, journal or spend accounting; 'overhead' = (calibrate wall time - bare "
        "wall time) / pairs. The server (one Python process) bounds both at high concurrency.\n"
    )
    print(sandbox_line() + "\n")
    print(f"### Memory over {args.memory_pairs:,} pairs (concurrency 32)\n")
    print("\n".join(memory))
    print(f"\n_Wall time: {time.perf_counter() - started:.1f} s._")


if __name__ == "__main__":
    main()
