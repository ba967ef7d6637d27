"""Routing quality v2: choose the default on inner validation, then report it on the test parts.

For every outer seed 0-4 the usual 70/30 split is made. Choosing uses only the 70% training
part: it is split again (70/30, inner seed 100 + seed, as ``select_defaults.py``), every candidate
is fitted on the inner-training part and its four figures are computed on the
inner-validation part. Candidates are ranked by their mean rank over both data sets and the
four figures (cost-to-match and cost-to-95% first by how many splits reach them, then by
their mean where reached), and checked for "better than the paper's recipe on every figure
of both data sets". Only then every candidate is fitted on each outer training part and
scored on its test part (``evaluate_router``, seeds 0-4), for the report.

Also on inner validation: the recipe, the previous default, the utility score alone and the
chosen candidate on inner-training parts subsampled to 150 and 600 queries (calibration-size
robustness), and on a 201-point alpha grid (how much of a difference is only the 51-point
grid's resolution).

    python benchmarks/select_quality.py [--data-dir DIR] [--skip-test] >> benchmarks/SELECTION.md

About 40 minutes on 2 cores shared with other work (k-means dominates).
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.evaluation.evaluate import (
    DEFAULT_ALPHAS,
    SplitEvaluation,
    evaluate_router,
    evaluate_split,
    split_indices,
)
from langchain_avengers.routing.router import BatchScores
from langchain_avengers.routing.scoring import utility_weights

DATASETS = ("routerbench_11models", "openrouter_4models")
OUTER_SEEDS = (0, 1, 2, 3, 4)
INNER_SEED_OFFSETS = (100,)
SIZES = (150, 600)
DENSE_ALPHAS = tuple(float(a) for a in np.round(np.linspace(0, 1, 201), 3))
FIGURES = (  # key, label, higher is better, "reached" matters
    ("aiq", "AIQ", True, False),
    ("acc_at_best_cost", "acc@C*", True, False),
    ("cost_to_95", "c95", False, True),
    ("cost_to_match", "c-match", False, True),
)
RECIPE = "paper recipe"
V1 = "v1 default"
ENSEMBLE = (0.5, 1.0, 2.0)
SHIPPED = "utility + ensemble (0.5, 1, 2) + shrinkage 10"
"""The configuration shipped as the default: the one this protocol chooses."""


class KnnBlendRouter(ClusterRouter):
    """Tried, not shipped: expected accuracy and cost half from the clusters, half from the
    query's 100 nearest calibration queries (needs the calibration embeddings at routing)."""

    neighbours = 100
    share = 0.5

    def fit(self, records: Any, *, embeddings: np.ndarray | None = None) -> KnnBlendRouter:
        if not isinstance(records, CalibrationData) or embeddings is None:
            msg = "KnnBlendRouter: benchmark use only, with embeddings given"
            raise TypeError(msg)
        data = records
        self._knn = (embeddings, data.scores, data.costs)
        super().fit(data, embeddings=embeddings)
        return self

    def _score_vectors(self, vectors, candidates, nearest_clusters, nearest=None, *, parts=True):  # type: ignore[no-untyped-def]
        base = super()._score_vectors(vectors, candidates, nearest_clusters, nearest, parts=False)
        train, scores, costs = self._knn
        idx = np.argpartition(-(vectors @ train.T), self.neighbours - 1, axis=1)
        idx = idx[:, : self.neighbours]
        cols = list(candidates)
        acc = np.nanmean(scores[idx][:, :, cols], axis=1)
        cost = np.nanmean(costs[idx][:, :, cols], axis=1)
        acc = np.where(np.isnan(acc), base.expected_accuracy, acc)
        cost = np.where(np.isnan(cost), base.expected_cost, cost)
        blended_acc = self.share * acc + (1 - self.share) * base.expected_accuracy
        blended_cost = self.share * cost + (1 - self.share) * base.expected_cost
        if not parts:
            return BatchScores(
                base.models, base.accuracy_part, base.cost_part, blended_acc, blended_cost
            )
        return BatchScores(
            base.models,
            blended_acc,
            -self._cost_term(blended_cost),
            blended_acc,
            blended_cost,
            alpha_weights=functools.partial(utility_weights, log_prices=self.log_prices_),
        )


def configs() -> dict[str, Callable[[], ClusterRouter]]:
    """Every candidate, by label; the paper's recipe and the previous default first."""

    def router(**params: Any) -> Callable[[], ClusterRouter]:
        return lambda: ClusterRouter(**params)

    # every option spelled out, so a change of the package's defaults never changes a row
    single = {"cluster_scales": (1.0,), "shrinkage": 0.0}
    utility = {"scoring": "utility", "cost_scale": "linear"}
    return {
        RECIPE: router(n_clusters=60, scoring="minmax", cost_scale="linear", **single),
        V1: router(scoring="minmax", cost_scale="log", **single),
        "v1 default + ensemble (0.5, 1, 2)": router(
            scoring="minmax", cost_scale="log", cluster_scales=ENSEMBLE, shrinkage=0.0
        ),
        "utility": router(**utility, **single),
        "utility, log cost": router(scoring="utility", cost_scale="log", **single),
        "utility + kNN blend (100 neighbours, 50%)": lambda: KnnBlendRouter(**utility, **single),
        "utility + ensemble (1, 1, 1) (3 seeds)": router(
            **utility, cluster_scales=(1.0, 1.0, 1.0), shrinkage=0.0
        ),
        "utility + ensemble (0.5, 1, 2)": router(**utility, cluster_scales=ENSEMBLE, shrinkage=0.0),
        SHIPPED: router(**utility, cluster_scales=ENSEMBLE, shrinkage=10.0),
    }


def figures_of(split: SplitEvaluation) -> dict[str, float]:
    f = split.figures
    return {
        "aiq": f.aiq,
        "acc_at_best_cost": np.nan if f.acc_at_best_cost is None else f.acc_at_best_cost,
        "cost_to_95": np.nan if f.cost_to_95 is None else f.cost_to_95,
        "cost_to_match": np.nan if f.cost_to_match is None else f.cost_to_match,
        "best": split.best_single.accuracy,
    }


def inner_splits(data: CalibrationData) -> list[tuple[CalibrationData, np.ndarray, np.ndarray]]:
    """(outer training part, inner-train rows, inner-validation rows); test parts unused."""
    out = []
    for seed in OUTER_SEEDS:
        train, _test = split_indices(data, seed=seed)
        part = data.subset(train)
        for offset in INNER_SEED_OFFSETS:
            inner_train, inner_val = split_indices(part, seed=offset + seed)
            out.append((part, inner_train, inner_val))
    return out


def validate(
    data: CalibrationData,
    make: Callable[[], ClusterRouter],
    *,
    size: int | None = None,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> list[dict[str, float]]:
    rows = []
    for i, (part, inner_train, inner_val) in enumerate(inner_splits(data)):
        fit_rows = inner_train
        if size is not None and size < len(inner_train):
            rng = np.random.default_rng(1000 * i + size)
            fit_rows = np.sort(rng.choice(inner_train, size, replace=False))
        split = evaluate_split(part, make(), fit_rows, inner_val, alphas=alphas, seed=i)
        rows.append(figures_of(split))
    return rows


def summary(rows: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, *_ in FIGURES:
        values = np.array([r[key] for r in rows], dtype=float)
        reached = ~np.isnan(values)
        out[key] = {
            "mean": float(values[reached].mean()) if reached.any() else np.nan,
            "std": float(values[reached].std()) if reached.any() else np.nan,
            "reached": int(reached.sum()),
            "n": len(values),
        }
    gaps = np.array([r["acc_at_best_cost"] - r["best"] for r in rows])
    out["gap"] = {"mean": float(np.nanmean(gaps)), "std": float(np.nanstd(gaps))}
    return out


def sort_key(s: dict[str, Any], key: str, higher: bool, counted: bool) -> tuple[float, float]:
    """Smaller is better; a target reached in more splits first."""
    f = s[key]
    first = -f["reached"] if counted else 0.0
    value = f["mean"] if not np.isnan(f["mean"]) else np.inf
    return (first, -value if higher else value)


def better(a: dict[str, Any], b: dict[str, Any], key: str, higher: bool, counted: bool) -> bool:
    return sort_key(a, key, higher, counted) < sort_key(b, key, higher, counted)


def mean_ranks(tables: dict[str, dict[str, dict]]) -> dict[str, float]:
    labels = list(next(iter(tables.values())))
    ranks: dict[str, list[int]] = {label: [] for label in labels}
    for table in tables.values():
        for key, _, higher, counted in FIGURES:
            keys = {label: sort_key(table[label], key, higher, counted) for label in labels}
            for label in labels:
                ranks[label].append(sum(k < keys[label] for k in keys.values()) + 1)
    return {label: float(np.mean(r)) for label, r in ranks.items()}


def beats_recipe(tables: dict[str, dict[str, dict]], label: str) -> str:
    lost = [
        f"{name.split('_')[0]} {short}"
        for name, table in tables.items()
        for key, short, higher, counted in FIGURES
        if not better(table[label], table[RECIPE], key, higher, counted)
    ]
    return "yes" if not lost else "no (" + ", ".join(lost) + ")"


def cell(f: dict[str, Any], percent: bool = True) -> str:
    if f["reached"] == 0:
        return f"never (0/{f['n']})"
    text = f"{100 * f['mean']:.2f} ± {100 * f['std']:.2f}"
    if f["reached"] < f["n"]:
        text += f" ({f['reached']}/{f['n']})"
    return text


def table(tables: dict[str, dict[str, dict]], order: list[str], ranks: dict | None) -> str:
    head = ["configuration"]
    for name in tables:
        short = name.split("_")[0]
        head += [f"{short} {label}" for _, label, _, _ in FIGURES] + [f"{short} acc@C* − A*"]
    if ranks is not None:
        head += ["mean rank", "beats recipe on all 8"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in order:
        cells = [label]
        for t in tables.values():
            s = t[label]
            cells += [cell(s[key]) for key, *_ in FIGURES]
            cells.append(f"{100 * s['gap']['mean']:+.2f} ± {100 * s['gap']['std']:.2f}")
        if ranks is not None:
            cells += [f"{ranks[label]:.2f}", beats_recipe(tables, label)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_summary(evaluation: Any) -> dict[str, Any]:
    return summary([figures_of(s) for s in evaluation.splits])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--skip-test", action="store_true", help="inner validation only")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # small-cluster warnings at small sizes
    started = time.perf_counter()
    data = {name: load_data(args.data_dir, name) for name in DATASETS}
    candidates = configs()
    inner = {
        name: {label: summary(validate(d, make)) for label, make in candidates.items()}
        for name, d in data.items()
    }
    ranks = mean_ranks(inner)
    order = sorted(candidates, key=lambda label: ranks[label])
    chosen = next(label for label in order if beats_recipe(inner, label) == "yes")
    shortlist = list(
        dict.fromkeys([RECIPE, V1, "utility", "utility + ensemble (0.5, 1, 2)", chosen])
    )
    print("\n## Routing quality v2: scoring, ensembles, local estimates (issue 10)\n")
    print(
        "Command: `python benchmarks/select_quality.py`. Figures in % (cost figures in % of "
        "the best single model's cost C*), mean ± std over splits; (r/n) = reached in r of n "
        "splits, mean over those. acc@C* − A* = acc@best-cost minus the best single model's "
        "accuracy on the same queries (the paper's headline). Rank = mean rank over 2 data "
        "sets x 4 figures (c95 and c-match first by splits reached). 'beats recipe' = better "
        "than the paper's recipe on all 4 figures of both data sets, by the same ordering.\n"
    )
    print(
        f"### Inner validation ({len(OUTER_SEEDS)} outer seeds x {len(INNER_SEED_OFFSETS)} "
        "inner 70/30 splits of each outer training part; test parts untouched)\n"
    )
    print(table(inner, order, ranks))
    print(
        f"\nChosen: **{chosen}**, the first by mean rank that beats the recipe on every "
        "figure of both data sets on inner validation.\n",
        flush=True,
    )
    for size in SIZES:
        sized = {
            name: {label: summary(validate(d, candidates[label], size=size)) for label in shortlist}
            for name, d in data.items()
        }
        print(f"### Inner validation, calibration subsampled to {size} queries\n")
        print(table(sized, shortlist, None) + "\n", flush=True)
    dense = {
        name: {
            label: summary(validate(d, candidates[label], alphas=DENSE_ALPHAS))
            for label in shortlist
        }
        for name, d in data.items()
    }
    print(
        "### Inner validation on a 201-point alpha grid (resolution check: the figures "
        "above use the default 51 points)\n"
    )
    print(table(dense, shortlist, None) + "\n")
    print(f"_Choosing took {(time.perf_counter() - started) / 60:.1f} min._\n", flush=True)
    if args.skip_test:
        return
    test = {
        name: {
            label: test_summary(evaluate_router(d, make(), seeds=OUTER_SEEDS))
            for label, make in candidates.items()
        }
        for name, d in data.items()
    }
    print(
        "### Outer test parts (report only, never used to choose): `evaluate_router`, "
        f"seeds {OUTER_SEEDS[0]}-{OUTER_SEEDS[-1]}, every candidate\n"
    )
    print(table(test, [chosen, RECIPE] + [c for c in order if c not in (chosen, RECIPE)], None))
    verdict = beats_recipe(test, chosen)
    print(f"\nChosen beats the recipe on every figure of both sets on the test parts: {verdict}.\n")
    print(f"_Wall time: {(time.perf_counter() - started) / 60:.1f} min._")


if __name__ == "__main__":
    main()
