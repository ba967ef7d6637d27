"""Routing with one model barely measured: which prior its unknown costs should have.

A model added late, or whose calls mostly failed, has scores and costs on a few calibration
queries only; the router fills its other queries with its expected score and cost
(``langchain_avengers.routing.statistics``). This compares priors of its expected cost
ratio to the other models, on held-out splits of both shared data sets:

- ``raw``: its measured total cost over theirs, unshrunk (before issue 16 item 8: one answer
  billed $0 made a model free everywhere);
- ``arithmetic, 10 at ratio 1``: 10 pseudo-queries costing the others' mean added to both
  totals (the accuracy prior's weight, on the linear scale);
- ``dearest``: the same toward the dearest model's raw ratio (pessimistic, like the accuracy
  prior's weakest model);
- ``geometric, 1 at ratio 1 (default)`` and ``geometric, 3 at ratio 1``: the ratio shrunk
  toward 1 on the log scale, ``ratio ** (n / (n + w))``, a ratio of 0 counted as a tenth of
  the cheapest paid model's first (``statistics.expected_cost_ratio``).

For each data set (the 70/30 split of seed 0), its cheapest and its dearest model in turn keep
their score and cost on m random training queries only: m = 1 (as billed, and billed $0: the
trial of the issue) and m = 20; every other cell and the whole test part stay measured. The
default ``ClusterRouter()`` is fitted on the training part and scored on the test part.
Printed per case: AIQ, acc@best-cost, and the share of test queries the sparse model takes
at alpha 0 and 1, beside the same model fully measured. k-means does not see scores or
costs, so the split's k-means ensemble is fitted once and reused (the statistics and price
table are refitted every time). About 5 minutes on 2 idle cores.

    python benchmarks/sparse_models.py [--data-dir DIR] > benchmarks/sparse_models.md
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.evaluation.evaluate import evaluate_split, split_indices
from langchain_avengers.evaluation.results import SplitEvaluation
from langchain_avengers.routing import router as router_module
from langchain_avengers.routing import statistics

DATASETS = ("routerbench_11models", "openrouter_4models")
SEED = 0
CASES = ((1, "as billed"), (1, "$0"), (20, "as billed"))
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


def arithmetic_ratio(own: np.ndarray, others: np.ndarray, paired: np.ndarray) -> np.ndarray:
    """10 pseudo-queries at ratio 1 added to both totals (arithmetic shrinkage)."""
    own_total = np.where(paired, own, 0.0).sum(axis=0)
    their_total = np.where(paired, others, 0.0).sum(axis=0)
    n_paired = np.maximum(paired.sum(axis=0), 1)
    weight = statistics.PRIOR_QUERIES * their_total / n_paired
    return np.divide(
        own_total + weight,
        their_total + weight,
        out=np.ones_like(own_total),
        where=their_total + weight > 0,
    )


def log_ratio(weight: float) -> Ratio:
    """The default's geometric shrinkage toward ratio 1 with ``weight`` pseudo-queries."""

    def ratio(own: np.ndarray, others: np.ndarray, paired: np.ndarray) -> np.ndarray:
        saved = statistics.COST_PRIOR_QUERIES
        statistics.COST_PRIOR_QUERIES = weight
        try:
            return SHIPPED(own, others, paired)
        finally:
            statistics.COST_PRIOR_QUERIES = saved

    return ratio


SHIPPED = statistics.expected_cost_ratio
PRIORS: dict[str, Ratio] = {
    "raw": raw_ratio,
    "arithmetic, 10 at ratio 1": arithmetic_ratio,
    "dearest": dearest_ratio,
    "geometric, 1 at ratio 1 (default)": log_ratio(1.0),
    "geometric, 3 at ratio 1": log_ratio(3.0),
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
    data: CalibrationData, train: np.ndarray, column: int, keep: int, billed: str
) -> CalibrationData:
    """``data`` with ``column`` measured on ``keep`` training rows only (billed $0 on request)."""
    rng = np.random.default_rng([column, keep])
    kept = rng.choice(train, size=keep, replace=False)
    hidden = np.setdiff1d(train, kept)
    scores, costs = data.scores.copy(), data.costs.copy()
    scores[hidden, column] = np.nan
    costs[hidden, column] = np.nan
    if billed == "$0":
        costs[kept, column] = 0.0
    return dataclasses.replace(data, scores=scores, costs=costs)


def row(name: str, model: str, case: str, prior: str, result: SplitEvaluation) -> str:
    """One table row: the figures and the sparse model's share at alpha 0 and 1."""
    figures, curve = result.figures, result.curve
    return (
        f"| {name} | {model} | {case} | {prior} | {100 * figures.aiq:.2f} "
        f"| {100 * (figures.acc_at_best_cost or 0.0):.2f} "
        f"| {100 * curve[0].usage.get(model, 0.0):.1f}% "
        f"| {100 * curve[-1].usage.get(model, 0.0):.1f}% |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    reuse_kmeans()
    started = time.perf_counter()
    print(
        "| data set | sparse model | measured on (training queries, their cost) | prior "
        "| AIQ | acc@best-cost | its share at alpha 0 | at alpha 1 |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|")
    for name in DATASETS:
        data = load_data(args.data_dir, name)
        train, test = split_indices(data, seed=SEED)
        full = evaluate_split(data, ClusterRouter(), train, test, seed=SEED)
        mean_cost = np.nanmean(data.costs[train], axis=0)
        for column in (int(np.argmin(mean_cost)), int(np.argmax(mean_cost))):
            model = data.models[column]
            print(row(name, model, "all (fully measured)", "-", full), flush=True)
            for keep, billed in CASES:
                masked = sparse(data, train, column, keep, billed)
                for prior, ratio in PRIORS.items():
                    with cost_prior(ratio), warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)  # "fewer than 10 scores"
                        result = evaluate_split(masked, ClusterRouter(), train, test, seed=SEED)
                    print(row(name, model, f"{keep}, {billed}", prior, result), flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s; seed {SEED}'s 70/30 split.")


if __name__ == "__main__":
    main()
