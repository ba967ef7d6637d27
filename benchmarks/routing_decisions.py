"""Fingerprints of routed decisions on both shared data sets, to show a change kept them.

For each data set: the default ``ClusterRouter()`` fitted on seed 0's 70% split routes the
held-out 30% at alphas 0, 0.1, ..., 1; the bundled default router routes the same queries.
Prints, per data set, a SHA-256 of every chosen model id in order (and the count), so two
runs (before and after a refactor) can be compared line by line.

    python benchmarks/routing_decisions.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

from langchain_avengers import ClusterRouter, load_default_router

DATASETS = ("routerbench_11models", "openrouter_4models")
ALPHAS = tuple(round(a, 1) for a in np.linspace(0, 1, 11))


def split(n: int, seed: int = 0, test_fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation split (numpy only, so it needs no training extra)."""
    order = np.random.default_rng(seed).permutation(n)
    cut = round(n * (1 - test_fraction))
    return np.sort(order[:cut]), np.sort(order[cut:])


def fingerprint(choices: list[str]) -> str:
    return hashlib.sha256("\n".join(choices).encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    bundled = load_default_router()
    print("| data set | router | decisions | sha256 (first 16) |")
    print("|---|---|---:|---|")
    for name in DATASETS:
        data = load_data(args.data_dir, name)
        train, test = split(len(data))
        fitted = ClusterRouter().fit(data.subset(train))
        queries = [data.queries[i] for i in test]
        vectors = fitted.get_embedder().embed_documents(queries)
        for label, router in (("default fit (seed 0, 70%)", fitted), ("bundled", bundled)):
            choices = [m for a in ALPHAS for m in router.route_batch(np.asarray(vectors), a)]
            print(f"| {name} | {label} | {len(choices)} | `{fingerprint(choices)}` |")


if __name__ == "__main__":
    main()
