"""Does ``SpendPacer`` hold a spend rate on a replayed stream of real queries?

For each shared data set and seeds 0-4: a stratified 50/50 split; a default ``ClusterRouter()``
is fitted on one half and the other half is replayed as a stream of calls, in a random order,
with the costs and scores recorded in the data. Before each call the pacer gives alpha, the
query goes to the model the router picks at that alpha (among the models measured on it; the
router's scores are computed once with ``score_batch`` for a grid of 1,001 alphas), and the
pacer records the recorded cost of that model's answer. The pacer has its defaults
(``SpendPacer(usd_per_1k_calls=target)``: start at alpha 0, window of 100 calls).

Targets: what a fixed alpha of 0.2, 0.5 and 0.8 spends on the whole stream, and 10%, 30% and
60% of what the best single model (highest mean score among models measured on every query)
spends on it. Two orders: ``random``, and ``shift``, where the benchmarks whose queries cost
least at alpha 0.5 come first (about half the stream) and the dearest last, so the cost regime
changes mid-stream.

Reported, after a warm-up of the first 200 calls: spend rate / target (mean over seeds, and
the seed furthest from 1), in how many seeds it was within +-10%, the same over the whole
stream, and the pacer's accuracy minus the accuracy of the best fixed alpha in hindsight at the
same spend (the most accurate grid alpha whose spend over the same calls is at most the
pacer's).

    python benchmarks/spend_pacing.py [--data-dir DIR]

About 1 minute on 2 idle cores.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.evaluation.evaluate import split_indices
from langchain_avengers.policies.pacing import SpendPacer
from langchain_avengers.routing.embeddings import embed_texts

DATASETS = ("routerbench_11models", "openrouter_4models")
SEEDS = (0, 1, 2, 3, 4)
GRID = np.linspace(0.0, 1.0, 1001)
WARM_UP = 200
TOLERANCE = 0.10
FIXED_ALPHAS = (0.2, 0.5, 0.8)
BEST_FRACTIONS = (0.1, 0.3, 0.6)
ORDERS = ("random", "shift")


@dataclass(frozen=True)
class Stream:
    """Replayable calls: per query, the recorded cost and score of the model chosen per alpha."""

    costs: np.ndarray
    """``(len(GRID), n)`` USD."""
    scores: np.ndarray
    """``(len(GRID), n)``."""
    best_single_cost: float
    """USD per call of the best single model on these queries."""
    groups: np.ndarray
    """Benchmark family of each query."""

    def reorder(self, order: np.ndarray) -> Stream:
        return Stream(
            self.costs[:, order], self.scores[:, order], self.best_single_cost, self.groups[order]
        )


@dataclass(frozen=True)
class Run:
    """One pacer run: target, spend rates and accuracies."""

    dataset: str
    order: str
    target_label: str
    target: float
    rate_after: float
    rate_all: float
    accuracy_after: float
    hindsight_after: float
    reachable: bool
    """Whether alpha 1 spends at least the target over the calls after the warm-up."""


def choices_on_grid(router: ClusterRouter, vectors: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """``(len(GRID), n)`` column chosen per alpha, among the models measured on each query."""
    out = np.empty((len(GRID), len(vectors)), dtype=int)
    patterns, group = np.unique(measured, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        rows = np.flatnonzero(group.ravel() == g)
        allowed = [m for m, ok in zip(router.models_, pattern, strict=True) if ok]
        batch = router.score_batch(vectors[rows], allowed_models=allowed)
        columns = np.array([router.models_.index(m) for m in batch.models])
        for i, alpha in enumerate(GRID):
            out[i, rows] = columns[batch.choose(alpha)]
    return out


def make_stream(data: CalibrationData, vectors: np.ndarray, seed: int) -> Stream:
    fit, replay = split_indices(data, seed=seed, test_size=0.5)
    router = ClusterRouter().fit(data.subset(fit), embeddings=vectors[fit])
    held = data.subset(replay)
    measured = ~np.isnan(held.scores) & ~np.isnan(held.costs)
    keep = np.flatnonzero(measured.any(axis=1))
    held, measured = held.subset(keep), measured[keep]
    chosen = choices_on_grid(router, vectors[replay][keep], measured)
    rows = np.arange(len(held))
    full = [j for j in range(len(held.models)) if measured[:, j].all()]
    best = max(full, key=lambda j: held.scores[:, j].mean())
    return Stream(
        costs=held.costs[rows, chosen],
        scores=held.scores[rows, chosen],
        best_single_cost=float(held.costs[:, best].mean()),
        groups=np.array([(d or "").split("/")[0] for d in held.datasets]),
    )


def shifted_order(stream: Stream, rng: np.random.Generator) -> np.ndarray:
    """Random within two blocks: the benchmarks cheapest at alpha 0.5 first, the dearest last."""
    middle = int(np.argmin(np.abs(GRID - 0.5)))
    families = np.unique(stream.groups)
    by_cost = sorted(families, key=lambda f: stream.costs[middle, stream.groups == f].mean())
    sizes = np.cumsum([np.sum(stream.groups == f) for f in by_cost])
    first = set(by_cost[: int(np.searchsorted(sizes, len(stream.groups) / 2)) + 1])
    early = np.array([g in first for g in stream.groups])
    return np.concatenate(
        [rng.permutation(np.flatnonzero(early)), rng.permutation(np.flatnonzero(~early))]
    )


def replay(stream: Stream, make_pacer: Callable[[], SpendPacer]) -> tuple[np.ndarray, np.ndarray]:
    """Per call: the recorded cost and score of the model routed at the pacer's alpha."""
    pacer = make_pacer()
    n = stream.costs.shape[1]
    costs, scores = np.empty(n), np.empty(n)
    for i in range(n):
        g = round(pacer.alpha() * (len(GRID) - 1))
        costs[i], scores[i] = stream.costs[g, i], stream.scores[g, i]
        pacer.record(float(costs[i]))
    return costs, scores


def targets(stream: Stream) -> dict[str, float]:
    """USD per call: fixed alphas' spend on the whole stream, fractions of the best single."""
    out = {}
    for alpha in FIXED_ALPHAS:
        g = int(np.argmin(np.abs(GRID - alpha)))
        out[f"alpha {alpha:g} fixed"] = float(stream.costs[g].mean())
    for fraction in BEST_FRACTIONS:
        out[f"{fraction:.0%} of best single"] = fraction * stream.best_single_cost
    return out


def run_one(name: str, order: str, label: str, target: float, stream: Stream) -> Run:
    costs, scores = replay(stream, lambda: SpendPacer(usd_per_1k_calls=1000 * target))
    after = slice(WARM_UP, None)
    spend = costs[after].mean()
    fixed_costs = stream.costs[:, after].mean(axis=1)
    fixed_accuracy = stream.scores[:, after].mean(axis=1)
    affordable = fixed_costs <= spend + 1e-15
    hindsight = fixed_accuracy[affordable].max() if affordable.any() else float("nan")
    return Run(
        dataset=name,
        order=order,
        target_label=label,
        target=target,
        rate_after=spend / target,
        rate_all=costs.mean() / target,
        accuracy_after=float(scores[after].mean()),
        hindsight_after=float(hindsight),
        reachable=bool(fixed_costs[-1] >= target),
    )


def report(runs: list[Run]) -> None:
    print(
        "| data set | order | target | $ per 1k | spend / target after warm-up: mean | "
        "furthest | within ±10% | whole stream: mean | within ±10% | accuracy % | vs best "
        "fixed alpha in hindsight at the same spend (pp) | target above alpha 1's spend |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    keys = dict.fromkeys((r.dataset, r.order, r.target_label) for r in runs)
    for key in keys:
        rows = [r for r in runs if (r.dataset, r.order, r.target_label) == key]
        after = np.array([r.rate_after for r in rows])
        whole = np.array([r.rate_all for r in rows])
        gap = np.array([100 * (r.accuracy_after - r.hindsight_after) for r in rows])
        print(
            f"| {key[0]} | {key[1]} | {key[2]} | {1000 * np.mean([r.target for r in rows]):.3f} "
            f"| {after.mean():.3f} | {furthest(after):.3f} | {within(after)}/{len(rows)} "
            f"| {whole.mean():.3f} | {within(whole)}/{len(rows)} "
            f"| {100 * np.mean([r.accuracy_after for r in rows]):.2f} | {np.nanmean(gap):+.2f} "
            f"| {sum(not r.reachable for r in rows)}/{len(rows)} |"
        )
    for reachable in (True, False):
        after = np.array([r.rate_after for r in runs if r.reachable == reachable])
        if not len(after):
            continue
        which = "a target alpha 1 reaches" if reachable else "a target above alpha 1's spend"
        print(
            f"\nRuns with {which}: after the warm-up, spend within ±10% of the target in "
            f"{within(after)} of {len(after)} (furthest {furthest(after):.3f}x)."
        )


def within(rates: np.ndarray) -> int:
    return int((np.abs(rates - 1) <= TOLERANCE).sum())


def furthest(rates: np.ndarray) -> float:
    return float(rates[np.argmax(np.abs(rates - 1))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    print("# Spend pacing on replayed queries\n")
    print(
        "Command: `python benchmarks/spend_pacing.py`. Per data set, seeds 0-4: fit "
        "`ClusterRouter()` on one half, replay the other half as calls (random order, or "
        "`shift`: cheapest benchmarks first), `SpendPacer(usd_per_1k_calls=target)` with its "
        f"defaults picks alpha per call. Warm-up: the first {WARM_UP} calls. Spend / target: "
        "USD per call spent over target USD per call. Mean over seeds; 'furthest': the seed "
        "furthest from 1.\n"
    )
    runs = []
    for name in DATASETS:
        data = load_data(args.data_dir, name)
        vectors = embed_texts(ClusterRouter().get_embedder(), data.queries)
        for seed in SEEDS:
            stream = make_stream(data, vectors, seed)
            rng = np.random.default_rng(seed)
            ordered = {
                "random": stream.reorder(rng.permutation(stream.costs.shape[1])),
                "shift": stream.reorder(shifted_order(stream, rng)),
            }
            for order in ORDERS:
                for label, target in targets(stream).items():
                    runs.append(run_one(name, order, label, target, ordered[order]))
        print(f"{name}: {stream.costs.shape[1]} calls per stream\n")
    report(runs)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
