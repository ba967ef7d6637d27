"""Fit time on a quiet machine and beside a CPU hog, with and without the fit's thread limit.

Each fit is ``ClusterRouter().fit(path)`` (embedding included, as ``avengers fit`` does) in a
fresh Python process, on both shared data sets joined into one file (their queries once each,
each model's records where it was measured). Conditions: nothing else started by this script
("quiet": the machine's own load is printed), and ``2 x cores`` busy-loop processes running
beside the fit ("hog"). Variants: ``AVENGERS_FIT_THREADS=all`` (no limit: OpenMP's default of one
thread per core, the behaviour before the limit) and the default ``auto`` (the idle cores, at
least one; ``langchain_avengers.routing.kmeans.fit_threads``). Runs alternate between the
variants; the median of ``--runs`` runs is printed with every run.

    python benchmarks/fit_under_load.py [--data-dir DIR] [--runs 3] > benchmarks/fit_under_load.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_DATA_DIR

DATASETS = ("routerbench_11models", "openrouter_4models")
CHILD = """
import json, sys, time
from langchain_avengers import ClusterRouter
from langchain_avengers.routing.kmeans import fit_threads
started = time.perf_counter()
ClusterRouter().fit(sys.argv[1])
print(json.dumps({"fit_s": time.perf_counter() - started, "threads": fit_threads()}))
"""
HOG = "while True: pass"


def fit_once(path: Path, setting: str) -> dict[str, float]:
    env = {**os.environ, "AVENGERS_FIT_THREADS": setting}
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", CHILD, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def joined(data_dir: Path, into: Path) -> int:
    """Both data sets' lines in one file; the number of queries."""
    lines = []
    for name in DATASETS:
        path = data_dir / f"{name}.jsonl"
        if not path.is_file():
            msg = f"{path}: not found; pass --data-dir pointing at the shared data"
            raise SystemExit(msg)
        lines += [line for line in path.read_text().splitlines() if line.strip()]
    into.write_text("\n".join(lines) + "\n")
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "joined.jsonl"
        n = joined(args.data_dir, path)
        fit_once(path, "auto")  # warm-up: the page cache, WordLlama's files
        print(f"# Fit time under load ({n:,} queries, {cores} cores)\n")
        print(
            f"Command: `python benchmarks/fit_under_load.py --runs {args.runs}`: "
            "`ClusterRouter().fit(path)` in a fresh process each, embedding included; "
            "`all` = no thread limit (before), `auto` = the default limit."
        )
        print("\n| condition | threads | median fit s | runs s | 1-min load at start |")
        print("|---|---|---:|---|---:|")
        for condition in ("quiet", "hog"):
            hogs = []
            if condition == "hog":
                hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(2 * cores)]
                time.sleep(2)
            try:
                load = os.getloadavg()[0]
                runs: dict[str, list[float]] = {"all": [], "auto": []}
                used: dict[str, int | None] = {}
                for _ in range(args.runs):
                    for setting in runs:
                        result = fit_once(path, setting)
                        runs[setting].append(result["fit_s"])
                        used[setting] = result["threads"]
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            for setting, times in runs.items():
                label = f"`{setting}`" + (
                    f" ({used[setting]} used)" if used[setting] else " (no limit)"
                )
                print(
                    f"| {condition}{f' ({2 * cores} busy loops)' if hogs else ''} | {label} "
                    f"| {statistics.median(times):.2f} | {', '.join(f'{t:.2f}' for t in times)} "
                    f"| {load:.2f} |"
                )


if __name__ == "__main__":
    main()
