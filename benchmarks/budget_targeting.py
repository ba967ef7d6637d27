"""Does a budget chosen on held-out data hold on fresh queries?

For each shared data set and each of several random halvings (stratified by benchmark), one
half plays the user's calibration data and the other the fresh traffic nobody has seen:

1. on the picking half only, ``evaluate_router`` (five seeded inner 70/30 splits, as
   ``avengers evaluate`` does) gives the curves, and the best single model of that half
   (highest mean score among models measured on every query) its cost C*;
2. for targets of 10%, 30% and 60% of C*, alpha is chosen twice: by the rule before issue 9
   (the most accurate alpha whose seed-mean cost is within the target) and by
   ``Evaluation.choose_alpha(target_cost=...)`` (the most accurate alpha whose 90% bound is
   within it);
3. a router is fitted on the whole picking half and routes the other half (each query among
   the models measured on it), at the chosen alphas and at every alpha of the grid.

Reported per data set and target: realised cost / target on the fresh half (mean and worst
over halvings), how often the target was exceeded, how often the realised cost stayed within
the new rule's stated bound, the fresh accuracy, and the accuracy given up against the best
alpha in hindsight (the most accurate grid alpha whose fresh cost is within the target).

    python benchmarks/budget_targeting.py [--data-dir DIR] [--halvings 10]

About 7 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.evaluation.budgets import DEFAULT_CONFIDENCE
from langchain_avengers.evaluation.evaluate import (
    DEFAULT_ALPHAS,
    Evaluation,
    evaluate_router,
    evaluate_split,
    split_indices,
)

DATASETS = ("routerbench_11models", "openrouter_4models")
FRACTIONS = (0.1, 0.3, 0.6)
INNER_SEEDS = (0, 1, 2, 3, 4)
RULES = ("mean curve (before)", f"{DEFAULT_CONFIDENCE:.0%} bound (choose_alpha)")


@dataclass(frozen=True)
class Trial:
    """One rule, one target, one halving."""

    dataset: str
    fraction: float
    rule: str
    target: float
    alpha: float | None
    """None: the rule found no alpha within the target."""
    realised: float
    accuracy: float
    hindsight_accuracy: float
    bound: float | None


def best_single_cost(half: CalibrationData) -> tuple[str, float]:
    """The most accurate model measured on every query of ``half``, and its USD per 1,000."""
    measured = ~np.isnan(half.scores) & ~np.isnan(half.costs)
    full = [j for j in range(len(half.models)) if measured[:, j].all()]
    best = max(full, key=lambda j: half.scores[:, j].mean())
    return half.models[best], float(half.costs[:, best].mean()) * 1000


def mean_curve_alpha(evaluation: Evaluation, target: float) -> float | None:
    """The rule before issue 9: the most accurate alpha whose seed-mean cost is within target."""
    fits = [p for p in evaluation.curve_mean() if p["cost"] <= target]
    return max(fits, key=lambda p: (p["accuracy"], -p["cost"]))["alpha"] if fits else None


def bound_alpha(evaluation: Evaluation, target: float) -> tuple[float | None, float | None]:
    """``choose_alpha``'s alpha and stated cost bound, or Nones when nothing fits."""
    try:
        choice = evaluation.choose_alpha(target_cost=target)
    except ValueError:
        return None, None
    return choice.alpha, choice.cost_bound


def run_halving(data: CalibrationData, name: str, seed: int) -> list[Trial]:
    pick, fresh = split_indices(data, seed=seed, test_size=0.5)
    half = data.subset(pick)
    evaluation = evaluate_router(half, ClusterRouter(), seeds=INNER_SEEDS)
    _, best_cost = best_single_cost(half)
    outcome = evaluate_split(data, ClusterRouter(), pick, fresh, alphas=DEFAULT_ALPHAS, seed=seed)
    fresh_curve = {p.alpha: p for p in outcome.curve}
    trials = []
    for fraction in FRACTIONS:
        target = fraction * best_cost
        within = [p.accuracy for p in outcome.curve if p.cost <= target]
        hindsight = max(within, default=float("nan"))
        picks = [(mean_curve_alpha(evaluation, target), None), bound_alpha(evaluation, target)]
        for rule, (alpha, bound) in zip(RULES, picks, strict=True):
            point = fresh_curve[alpha] if alpha is not None else None
            trials.append(
                Trial(
                    dataset=name,
                    fraction=fraction,
                    rule=rule,
                    target=target,
                    alpha=alpha,
                    realised=point.cost if point else float("nan"),
                    accuracy=point.accuracy if point else float("nan"),
                    hindsight_accuracy=hindsight,
                    bound=bound,
                )
            )
    return trials


def report(trials: list[Trial], halvings: int) -> None:
    print(
        "| data set | target (of C*) | mean target $/1k | rule | realised / target: mean | "
        "worst | exceeded | within stated bound | fresh accuracy % | vs best alpha in "
        "hindsight (pp) | no alpha fits |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in DATASETS:
        for fraction in FRACTIONS:
            for rule in RULES:
                cell = (name, fraction, rule)
                rows = [t for t in trials if (t.dataset, t.fraction, t.rule) == cell]
                chosen = [t for t in rows if t.alpha is not None]
                ratios = np.array([t.realised / t.target for t in chosen])
                bounds = [(t.realised, t.bound) for t in chosen if t.bound is not None]
                held = f"{sum(r <= b for r, b in bounds)}/{len(bounds)}" if bounds else "—"
                gap = [100 * (t.accuracy - t.hindsight_accuracy) for t in chosen]
                print(
                    f"| {name} | {fraction:.0%} | {np.mean([t.target for t in rows]):.3f} | "
                    f"{rule} | {ratios.mean():.3f} | {ratios.max():.3f} | "
                    f"{int((ratios > 1).sum())}/{len(chosen)} | {held} | "
                    f"{100 * np.mean([t.accuracy for t in chosen]):.2f} | "
                    f"{np.mean(gap):+.2f} | {len(rows) - len(chosen)}/{len(rows)} |"
                )
    print()
    for rule in RULES:
        chosen = [t for t in trials if t.rule == rule and t.alpha is not None]
        over = [t.realised / t.target for t in chosen if t.realised > t.target]
        worst = f", worst {max(over):.3f}x" if over else ""
        print(
            f"- **{rule}**: target exceeded in {len(over)} of {len(chosen)} trials{worst} "
            f"({len(DATASETS)} data sets x {len(FRACTIONS)} targets x {halvings} halvings)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--halvings", type=int, default=10, help="random halvings (seeds 0..N-1)")
    args = parser.parse_args()
    started = time.perf_counter()
    print("# Budget targeting on fresh queries\n")
    print(
        "Command: `python benchmarks/budget_targeting.py`. Per data set, "
        f"{args.halvings} random halvings (seeds 0-{args.halvings - 1}, stratified by "
        "benchmark): alpha is chosen on one half (five inner 70/30 splits, default "
        "`ClusterRouter()`, 51-point alpha grid), a router fitted on that half routes the "
        "other half. C* = cost of the best single model of the picking half. Realised = USD "
        "per 1,000 fresh queries. 'within stated bound': realised cost at most the "
        f"{DEFAULT_CONFIDENCE:.0%} bound `choose_alpha` printed. 'vs best alpha in hindsight': "
        "fresh accuracy minus that of the most accurate grid alpha whose fresh cost is within "
        "the target.\n"
    )
    trials = []
    for name in DATASETS:
        data = load_data(args.data_dir, name)
        for seed in range(args.halvings):
            trials.extend(run_halving(data, name, seed))
    report(trials, args.halvings)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
