"""Cold start: a fresh process's import + construction + first call, against plain ChatOpenAI.

Each run is a new ``python -c`` process that imports the chat model, builds it against the
offline OpenRouter (langchain_avengers.testing, started here) and makes
one ``invoke``; for ``AvengersChatModel`` that first call also loads the router's embedder
and routes. The same is done with a plain ``ChatOpenAI``. Runs are interleaved (ABBA order)
so machine load falls on both alike; the wall time of each process is measured from here,
and the process reports its own phases. Target: median total <= 1.3x ChatOpenAI's.

    python benchmarks/cold_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from langchain_avengers.testing import offline_openrouter

ROOT = Path(__file__).resolve().parents[1]

TARGET_RATIO = 1.3
QUESTION = "What is the capital of Australia?"
HEAVY = ("sklearn", "scipy", "matplotlib", "wordllama", "tiktoken")

CHILD = """
import json, sys, time
t0 = time.perf_counter()
{import_line}
t1 = time.perf_counter()
llm = {construct}
t2 = time.perf_counter()
answer = llm.invoke({question!r})
t3 = time.perf_counter()
assert answer.content, "empty answer"
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"import": t1 - t0, "construct": t2 - t1, "first_call": t3 - t2,
                  "loaded": heavy}}))
"""

CASES = {
    "AvengersChatModel": {
        "import_line": "from langchain_avengers import AvengersChatModel",
        "construct": "AvengersChatModel(base_url={url!r}, api_key='bench', max_retries=0)",
    },
    "ChatOpenAI": {
        "import_line": "from langchain_openai import ChatOpenAI",
        "construct": (
            "ChatOpenAI(model='google/gemini-2.5-flash', base_url={url!r}, api_key='bench', "
            "max_retries=0)"
        ),
    },
}


def child_code(case: str, url: str) -> str:
    spec = CASES[case]
    return CHILD.format(
        import_line=spec["import_line"],
        construct=spec["construct"].format(url=url),
        question=QUESTION,
        heavy=HEAVY,
    )


def run_once(case: str, url: str) -> dict[str, float | list[str]]:
    """One fresh process; its wall time from here plus the phases it reports."""
    env = {**os.environ, "OPENROUTER_API_KEY": "", "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    done = subprocess.run(  # from the checkout's root, so its package is the one measured
        [sys.executable, "-c", child_code(case, url)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode:
        msg = f"{case} run failed:\n{done.stderr}"
        raise SystemExit(msg)
    return {"wall": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def measure(runs: int) -> dict[str, list[dict[str, float | list[str]]]]:
    results: dict[str, list[dict[str, float | list[str]]]] = {case: [] for case in CASES}
    with offline_openrouter() as server:
        for case in CASES:  # warm-up: bytecode caches, OS file cache
            run_once(case, server.base_url)
        for i in range(runs):
            order = list(CASES) if i % 2 == 0 else list(reversed(CASES))
            for case in order:
                results[case].append(run_once(case, server.base_url))
    return results


def summary(values: list[float]) -> str:
    median = statistics.median(values)
    return f"{median:.3f} ({min(values):.3f}-{max(values):.3f})"


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes of each kind")
    args = parser.parse_args()
    results = measure(args.runs)
    print("## Cold start (`python benchmarks/cold_start.py`)\n")
    print(
        f"{args.runs} fresh processes of each kind, interleaved, local test server; Python "
        f"{platform.python_version()}, {os.cpu_count()} cores, load average {load_average()}. "
        "Seconds, median (min-max).\n"
    )
    print("| chat model | process wall | import | construction | first invoke | heavy modules |")
    print("|---|---|---|---|---|---|")
    medians = {}
    for case, rows in results.items():
        cells = [summary([float(r[k]) for r in rows]) for k in ("wall", "import", "construct")]
        cells.append(summary([float(r["first_call"]) for r in rows]))
        loaded = sorted({m for r in rows for m in r["loaded"]})  # type: ignore[union-attr]
        medians[case] = statistics.median(float(r["wall"]) for r in rows)
        print(f"| {case} | " + " | ".join(cells) + f" | {', '.join(loaded) or 'none'} |")
    ratio = medians["AvengersChatModel"] / medians["ChatOpenAI"]
    paired = statistics.median(
        float(a["wall"]) / float(b["wall"])
        for a, b in zip(results["AvengersChatModel"], results["ChatOpenAI"], strict=True)
    )
    verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
    print(
        f"\nAvengersChatModel / ChatOpenAI (median process wall): {ratio:.2f}x "
        f"(target <= {TARGET_RATIO}x): {verdict}; median of the {args.runs} paired "
        f"(back-to-back) ratios: {paired:.2f}x"
    )
    print(
        "\n'process wall' = interpreter start to exit, measured by the parent; 'first invoke' "
        "includes, for AvengersChatModel, loading the embedder and routing. 'heavy modules' "
        f"= which of {', '.join(HEAVY)} the process had imported by the end."
    )


if __name__ == "__main__":
    main()
