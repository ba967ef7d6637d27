"""Routing with one model barely measured: which prior its unknown costs should have.

A model added late, or whose calls mostly failed, has scores and costs on a few calibration
queries only; the router fills its other queries with its expected score and cost
(``langchain_avengers.routing.statistics``). This compares three priors of its expected cost
ratio to the other models, on held-out splits of both shared data sets:

- ``raw``: its measured total cost over theirs, unshrunk (before issue 16 item 8: one answer
  billed $0 made a model free everywhere);
- ``ratio 1`` (the default): 10 pseudo-queries at ratio 1, i.e. costing the others' mean;
- ``dearest``: 10 pseudo-queries at the dearest model's raw ratio (pessimistic, like the
  accuracy prior's weakest model).

For each data set, seed (70/30 splits, seeds 0-1), model and size m (1 and 20 training
queries), that model keeps its score and cost on m random training queries only (once its
cost also set to $0, the trial of the issue); every other cell and the whole test part stay
measured. The default ``ClusterRouter()`` is fitted on the training part and scored on the
test part. Printed: the mean over models and seeds of AIQ, acc@best-cost and the share of
test queries the sparse model takes at alpha 0 and 1 (the same model fully measured for
reference). k-means does not see scores or costs, so each split's k-means ensemble is fitted
once and reused (the statistics and price table are refitted every time).

    python benchmarks/sparse_models.py [--data-dir DIR] > benchmarks/sparse_models.md
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.evaluation.evaluate import evaluate_split, split_indices
from langchain_avengers.routing import router as router_module
from langchain_avengers.routing import statistics

DATASETS = ("routerbench_11models", "openrouter_4models")
SEEDS = (0, 1)
SIZES = (1, 20)
Ratio = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def raw_ratio(own: np.ndarray, others: np.ndarray, paired: np.ndarray) -> np.ndarray:
    """The ratio of measured totals, unshrunk (the code before the fix)."""
    own_total = np.where(paired, own, 0.0).sum(axis=0)
    their_total = np.where(paired, others, 0.0).sum(axis=0)
    return np.divide(own_total, their_total, out=np.ones_like(own_total), where=their_total > 0)


def dearest_ratio(own: np.ndarray, others: np.ndarray, paired: np.ndarray) -> np.ndarray:
    """Shrunk like the default, toward the dearest model's raw ratio instead of 1."""
    k = statistics.PRIOR_QUERIES
    own_total = np.where(paired, own, 0.0).sum(axis=0)
    their_total = np.where(paired, others, 0.0).sum(axis=0)
    n_paired = np.maximum(paired.sum(axis=0), 1)
    dearest = raw_ratio(own, others, paired).max()
    weight = k * their_total / n_paired
    return np.divide(
        own_total + dearest * weight,
        their_total + weight,
        out=np.full_like(own_total, dearest),
        where=their_total + weight > 0,
    )


PRIORS: dict[str, Ratio] = {
    "raw": raw_ratio,
    "ratio 1": statistics.expected_cost_ratio,
    "dearest": dearest_ratio,
}


@contextmanager
def cost_prior(ratio: Ratio) -> Iterator[None]:
    """Fit with ``ratio`` as the expected cost ratio (patched where statistics looks it up)."""
    saved = statistics.expected_cost_ratio
    statistics.expected_cost_ratio = ratio
    try:
        yield
    finally:
        statistics.expected_cost_ratio = saved


def reuse_kmeans() -> None:
    """Memoise the k-means ensemble by its input (it never depends on scores or costs)."""
    fit = router_module.fit_kmeans_ensemble
    cache: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray]] = {}

    @functools.wraps(fit)
    def cached(vectors, counts, n_init, random_state):  # type: ignore[no-untyped-def]
        key = (hashlib.sha1(vectors.tobytes()).hexdigest(), tuple(counts), n_init, random_state)
        if key not in cache:
            cache[key] = fit(vectors, counts, n_init, random_state)
        return cache[key]

    router_module.fit_kmeans_ensemble = cached  # type: ignore[assignment]


def sparse(
    data: CalibrationData, train: np.ndarray, column: int, keep: int, rng: np.random.Generator
) -> tuple[CalibrationData, CalibrationData]:
    """``data`` with ``column`` measured on ``keep`` training rows only; also with them free."""
    hidden = np.setdiff1d(train, rng.choice(train, size=keep, replace=False))
    scores, costs = data.scores.copy(), data.costs.copy()
    scores[hidden, column] = np.nan
    costs[hidden, column] = np.nan
    free = costs.copy()
    kept = np.setdiff1d(train, hidden)
    free[kept, column] = 0.0
    return (
        dataclasses.replace(data, scores=scores, costs=costs),
        dataclasses.replace(data, scores=scores, costs=free),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    reuse_kmeans()
    started = time.perf_counter()
    print(
        "| data set | measured on | cost of those answers | prior | AIQ | acc@best-cost "
        "| its share at alpha 0 | at alpha 1 |"
    )
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for name in DATASETS:
        data = load_data(args.data_dir, name)
        rows: dict[tuple[str, str, str], list[tuple[float, float, float, float]]] = {}
        for seed in SEEDS:
            train, test = split_indices(data, seed=seed)
            full = evaluate_split(data, ClusterRouter(), train, test, seed=seed)
            for column, model in enumerate(data.models):
                shares = (full.curve[0].usage.get(model, 0.0), full.curve[-1].usage.get(model, 0.0))
                rows.setdefault(("all", "real", "-"), []).append(
                    (full.figures.aiq, full.figures.acc_at_best_cost or 0.0, *shares)
                )
                for keep in SIZES:
                    rng = np.random.default_rng([seed, column, keep])
                    for billed, masked in zip(
                        ("real", "$0"), sparse(data, train, column, keep, rng), strict=True
                    ):
                        for prior, ratio in PRIORS.items():
                            with cost_prior(ratio):
                                result = evaluate_split(
                                    masked, ClusterRouter(), train, test, seed=seed
                                )
                            curve = result.curve
                            rows.setdefault((str(keep), billed, prior), []).append(
                                (
                                    result.figures.aiq,
                                    result.figures.acc_at_best_cost or 0.0,
                                    curve[0].usage.get(model, 0.0),
                                    curve[-1].usage.get(model, 0.0),
                                )
                            )
        for (keep, billed, prior), values in rows.items():
            aiq, acc, share0, share1 = np.mean(values, axis=0)
            print(
                f"| {name} | {keep} | {billed} | {prior} | {100 * aiq:.2f} | {100 * acc:.2f} "
                f"| {100 * share0:.1f}% | {100 * share1:.1f}% |"
            )
    print(
        f"\n{time.perf_counter() - started:.0f} s; figures are means over models and seeds "
        f"{', '.join(map(str, SEEDS))} (RouterBench 11 models, OpenRouter 4)."
    )


if __name__ == "__main__":
    main()
