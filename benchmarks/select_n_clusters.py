"""Choose how the default number of clusters follows the calibration-set size (validation only).

For every outer seed the usual 70/30 split is made and its 30% test part is never looked at:
the 70% training part is split again, twice (70/30, inner validation seeds 100 + seed, as in
``select_defaults.py``, and 200 + seed). The inner-training part is subsampled to each
calibration size (100, 150, 300, 600, 1200 and all of it); each candidate rule gives the
number of clusters k for that size (``nearest_clusters`` is min(4, k)), the router is fitted on the
subsample and scored on the whole inner-validation part, so every size is judged on the
same queries. Rules are ranked by their mean rank over
both data sets, all sizes and three figures (AIQ, cost-to-95%, acc@best-cost; cost-to-95% is
ranked by the number of splits reaching it, then by its mean where reached).

Also reported, at alpha = 1: the share of inner-validation queries routed to a model that is
worse than another pool model on every task family of the data (family = dataset name before
"/"; per-family accuracy measured on the outer training part), the "dominated" share.

    python benchmarks/select_n_clusters.py [--data-dir DIR] >> benchmarks/SELECTION.md

About 6 minutes on 2 idle cores (k-means with the default n_init=4; rules giving the same k at
a size share one fit).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.evaluation.evaluate import SplitEvaluation, evaluate_split, split_indices

DATASETS = ("routerbench_11models", "openrouter_4models")
OUTER_SEEDS = (0, 1, 2, 3, 4)
INNER_SEED_OFFSETS = (100, 200)
SIZES: tuple[int | None, ...] = (100, 150, 300, 600, 1200, None)  # None: the whole part
K_MIN, K_MAX = 2, 60
FIGURES = (("aiq", True), ("cost_to_95", False), ("acc_at_best_cost", True))


def clipped(k: float) -> int:
    return int(np.clip(np.floor(k + 0.5), K_MIN, K_MAX))


RULES: dict[str, Callable[[int], int]] = {
    "k = 60 (before)": lambda n: 60,
    "k = n/5": lambda n: clipped(n / 5),
    "k = n/10": lambda n: clipped(n / 10),
    "k = n/20": lambda n: clipped(n / 20),
    "k = n/40": lambda n: clipped(n / 40),
    "k = sqrt(n)": lambda n: clipped(np.sqrt(n)),
    "k = sqrt(n)/2": lambda n: clipped(np.sqrt(n) / 2),
}


def dominated_models(data: CalibrationData) -> set[str]:
    """Models scoring below some other pool model on every task family."""
    families = np.array([(d or "").split("/", 1)[0] for d in data.datasets])
    names = np.unique(families)
    acc = np.full((len(data.models), len(names)), np.nan)
    for j in range(len(data.models)):
        for f, name in enumerate(names):
            scores = data.scores[families == name, j]
            if (~np.isnan(scores)).any():
                acc[j, f] = np.nanmean(scores)
    return {
        data.models[a]
        for a in range(len(data.models))
        if any(np.all(acc[b] > acc[a]) for b in range(len(data.models)) if b != a)
    }


def measure(split: SplitEvaluation, dominated: set[str]) -> dict[str, float]:
    f = split.figures
    at_one = next(p for p in split.curve if p.alpha == 1.0)
    return {
        "aiq": f.aiq,
        "cost_to_95": np.nan if f.cost_to_95 is None else f.cost_to_95,
        "acc_at_best_cost": f.acc_at_best_cost or 0.0,
        "dominated": sum(share for m, share in at_one.usage.items() if m in dominated),
    }


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Means over splits; cost-to-95% as its mean where reached, with the count reached."""
    out = {name: float(np.mean([r[name] for r in rows])) for name in rows[0]}
    c95 = np.array([r["cost_to_95"] for r in rows])
    reached = ~np.isnan(c95)
    out["cost_to_95"] = float(c95[reached].mean()) if reached.any() else np.inf
    out["c95_reached"] = int(reached.sum())
    out["splits"] = len(rows)
    return out


def study(data: CalibrationData) -> dict[tuple[int | None, str], dict[str, float]]:
    """Inner-validation figures per (size, rule) over outer seeds and inner splits."""
    per_split: dict[tuple[int | None, str], list[dict[str, float]]] = {}
    for seed in OUTER_SEEDS:
        train, _test = split_indices(data, seed=seed)  # the test part is never used
        part = data.subset(train)
        dominated = dominated_models(part)
        for offset in INNER_SEED_OFFSETS:
            inner_train, inner_val = split_indices(part, seed=offset + seed)
            for size in SIZES:
                rows = inner_train
                if size is not None and size < len(inner_train):
                    rng = np.random.default_rng(1000 * (offset + seed) + size)
                    rows = np.sort(rng.choice(inner_train, size, replace=False))
                by_k: dict[int, dict[str, float]] = {}
                for label, rule in RULES.items():
                    k = rule(len(rows))
                    if k not in by_k:
                        router = ClusterRouter(n_clusters=k, nearest_clusters=min(4, k))
                        split = evaluate_split(part, router, rows, inner_val, seed=seed)
                        by_k[k] = {**measure(split, dominated), "k": k, "n": len(rows)}
                    per_split.setdefault((size, label), []).append(by_k[k])
    return {key: summarise(rows) for key, rows in per_split.items()}


def mean_ranks(tables: dict[str, dict]) -> dict[str, float]:
    ranks: dict[str, list[int]] = {label: [] for label in RULES}
    for table in tables.values():
        for size in SIZES:
            for figure, higher_is_better in FIGURES:
                keys = [sort_key(table[(size, label)], figure, higher_is_better) for label in RULES]
                # equal values (rules giving the same k) share the better rank
                for label, key in zip(RULES, keys, strict=True):
                    ranks[label].append(sum(other < key for other in keys) + 1)
    return {label: float(np.mean(r)) for label, r in ranks.items()}


def sort_key(f: dict[str, float], figure: str, higher_is_better: bool) -> tuple[float, float]:
    """Smaller is better; cost-to-95% first by how many splits reach it."""
    if figure == "cost_to_95":
        return (-f["c95_reached"], f["cost_to_95"])
    return (0.0, -f[figure] if higher_is_better else f[figure])


def size_label(size: int | None, tables: dict[str, dict]) -> str:
    if size is not None:
        return str(size)
    sizes = " / ".join(f"{t[(None, next(iter(RULES)))]['n']:.0f}" for t in tables.values())
    return f"all ({sizes})"


def k_cell(size: int | None, label: str, tables: dict[str, dict]) -> str:
    return " / ".join(sorted({f"{t[(size, label)]['k']:.0f}" for t in tables.values()}))


def print_report(tables: dict[str, dict], seconds: float) -> None:
    ranks = mean_ranks(tables)
    short = {name: name.split("_")[0] for name in DATASETS}
    print("\n## Number of clusters by calibration-set size\n")
    print(
        "Command: `python benchmarks/select_n_clusters.py` "
        f"({seconds / 60:.0f} min on this machine). Inner-validation figures in %, mean over "
        f"{len(OUTER_SEEDS)} outer seeds x {len(INNER_SEED_OFFSETS)} inner splits (c95: mean "
        "where reached, with (reached/splits) when not every split reaches it); each router "
        "is fitted on a subsample of the inner-training part (size n) and scored on the "
        "whole inner-validation part; nearest_clusters = min(4, k); k clipped to "
        f"[{K_MIN}, {K_MAX}]. 'dom.' = share of inner-validation queries routed at alpha = 1 "
        "to a model worse than another pool model on every task family (on the outer "
        "training part). Rank = mean rank over 2 data sets x "
        f"{len(SIZES)} sizes x 3 figures (AIQ, c95, acc@C*; ties share the better rank).\n"
    )
    sizes = " | ".join(f"k at n={size_label(s, tables)}" for s in SIZES)
    print(f"| rule | mean rank | {sizes} |")
    print("|---" * (2 + len(SIZES)) + "|")
    for label in sorted(RULES, key=lambda lab: ranks[lab]):
        ks = [k_cell(s, label, tables) for s in SIZES]
        print(f"| {label} | {ranks[label]:.2f} | " + " | ".join(ks) + " |")
    best = min(RULES, key=lambda lab: ranks[lab])
    print(
        f'\nFirst by mean rank, and the rule of `n_clusters="auto"`: {best}, rounded, '
        f"clipped to [{K_MIN}, {K_MAX}] (and to n).\n"
    )
    header = " | ".join(
        f"{short[n]} AIQ | {short[n]} c95 | {short[n]} acc@C* | {short[n]} dom." for n in DATASETS
    )
    print(f"| n | rule | {header} |")
    print("|---" * (2 + 4 * len(DATASETS)) + "|")
    for size in SIZES:
        for label in RULES:
            cells = []
            for name in DATASETS:
                f = tables[name][(size, label)]
                c95 = f"{100 * f['cost_to_95']:.2f}"
                if f["c95_reached"] < f["splits"]:
                    c95 += f" ({f['c95_reached']:.0f}/{f['splits']:.0f})"
                cells += [
                    f"{100 * f['aiq']:.2f}",
                    c95,
                    f"{100 * f['acc_at_best_cost']:.2f}",
                    f"{100 * f['dominated']:.1f}",
                ]
            n_text = size_label(size, tables)
            print(f"| {n_text} | {label} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    start = time.perf_counter()
    warnings.simplefilter("ignore", UserWarning)  # small-cluster warnings: expected here
    tables = {name: study(load_data(args.data_dir, name)) for name in DATASETS}
    print_report(tables, time.perf_counter() - start)


if __name__ == "__main__":
    main()
