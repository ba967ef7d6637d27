"""Routing quality of the paper recipe and the default configuration on both shared data sets.

For each data set (RouterBench 11 models, OpenRouter 4 models) and each configuration, the
router is evaluated with :func:`langchain_avengers.evaluation.evaluate.evaluate_router`: five seeded
70/30 splits (seeds 0-4), default WordLlama embedder, default alpha grid (0, 0.02, ..., 1).
Prints, as Markdown: the best single model and the oracle, the four figures (seed mean ± std)
checked against the floor measured with the paper's recipe, a Table-3-like table of the
default configuration, and model usage shares at a few alphas.

    python benchmarks/routing_quality.py [--data-dir DIR] > quality.md

``--data-dir`` defaults to ``shared/data`` beside the repository (``../shared/data``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.evaluation.evaluate import Evaluation, Figures, evaluate_router

DATASETS = ("routerbench_11models", "openrouter_4models")
SEEDS = (0, 1, 2, 3, 4)
USAGE_ALPHAS = (0.0, 0.3, 0.5, 0.7, 1.0)
CONFIGS: dict[str, Callable[[], ClusterRouter]] = {
    # every option spelled out, so a change of the package's defaults never changes the recipe
    "paper recipe": lambda: ClusterRouter(
        n_clusters=60,
        nearest_clusters=4,
        scoring="minmax",
        cluster_scales=(1.0,),
        cost_scale="linear",
        cluster_weights="uniform",
        shrinkage=0.0,
    ),
    "default": ClusterRouter,
}
CONFIG_NOTES = {
    "paper recipe": '`ClusterRouter(n_clusters=60, nearest_clusters=4, scoring="minmax", '
    'cluster_scales=(1.0,), cost_scale="linear", cluster_weights="uniform", shrinkage=0.0)`: '
    "one k-means fit of 60 clusters, the 4 nearest weighed alike, raw per-cluster means, "
    "min-max of accuracy and linear mean cost",
    "default": "`ClusterRouter()`: k = round(sqrt(n)) for n training queries (47 on "
    "RouterBench's 2205, 50 on OpenRouter's 2491); three k-means fits of k/2, k and 2k "
    "clusters averaged; each cluster's means shrunk toward the pool mean with a weight of 10 "
    "queries; score = expected accuracy - price(alpha) x expected USD, the price "
    "table from the calibration queries' breakpoints (`benchmarks/select_quality.py`)",
}


@dataclass(frozen=True)
class Figure:
    """One headline figure: how to read it from a seed's figures and what it must reach."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    floors: dict[str, float]
    """Floor per data set, as a fraction; absent where no floor is set."""


FIGURES = (
    Figure("acc_at_best_cost", "acc@best-cost", "% acc", True, {"routerbench_11models": 0.872}),
    Figure("cost_to_match", "cost-to-match", "% of C*", False, {}),
    Figure(
        "cost_to_95",
        "cost-to-95%",
        "% of C*",
        False,
        {"routerbench_11models": 0.36, "openrouter_4models": 0.021},
    ),
    Figure(
        "aiq", "AIQ", "% acc", True, {"routerbench_11models": 0.768, "openrouter_4models": 0.884}
    ),
)


def evaluate_configs(data: CalibrationData) -> dict[str, Evaluation]:
    return {label: evaluate_router(data, make(), seeds=SEEDS) for label, make in CONFIGS.items()}


def per_seed(evaluation: Evaluation, key: str) -> list[float | None]:
    figures: list[Figures] = [s.figures for s in evaluation.splits]
    return [getattr(f, key) for f in figures]


def best_single_accuracy(evaluation: Evaluation) -> list[float]:
    """Accuracy of each seed's best single model (the A* each seed's figures use)."""
    return [s.best_single.accuracy for s in evaluation.splits]


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean and std (ddof=0) over the seeds that reached the target, and how many did."""
    reached = [v for v in values if v is not None]
    if not reached:
        return None, None, 0
    return float(np.mean(reached)), float(np.std(reached)), len(reached)


def format_figure(values: Sequence[float | None]) -> str:
    mean, std, n = mean_std(values)
    if mean is None or std is None:
        return f"never (0/{len(values)} seeds)"
    text = f"{100 * mean:.2f} ± {100 * std:.2f}"
    if n < len(values):
        text += f" (reached in {n}/{len(values)} seeds; mean over those)"
    return text


def floor_status(figure: Figure, dataset: str, values: Sequence[float | None]) -> str:
    """PASS/BELOW against the floor; a target missed in any seed counts as BELOW."""
    floor = figure.floors.get(dataset)
    if floor is None:
        return "—"
    if any(v is None for v in values):
        return "BELOW (not reached in every seed)"
    mean = float(np.mean([v for v in values if v is not None]))
    ok = mean >= floor if figure.higher_is_better else mean <= floor
    return "PASS" if ok else "BELOW"


def floor_text(figure: Figure, dataset: str) -> str:
    floor = figure.floors.get(dataset)
    if floor is None:
        return "—"
    sign = ">=" if figure.higher_is_better else "<="
    return f"{sign} {100 * floor:.1f}"


def goal_row(evaluations: dict[str, Evaluation]) -> list[str]:
    """acc@best-cost above the best single model's accuracy (the paper's claim)."""
    cells = []
    for evaluation in evaluations.values():
        router = per_seed(evaluation, "acc_at_best_cost")
        best = best_single_accuracy(evaluation)
        if any(r is None for r in router):
            cells += ["n/a (no alpha point within C* in some seed)", "BELOW"]
            continue
        gaps = np.array([r - b for r, b in zip(router, best, strict=True) if r is not None])
        cells += [
            f"{100 * gaps.mean():+.3f} ± {100 * gaps.std():.3f} "
            f"(above in {int((gaps > 0).sum())}/{len(gaps)} seeds)",
            "PASS" if gaps.mean() > 0 else "BELOW",
        ]
    return ["acc@best-cost − best single acc", "pp", *cells, "> 0"]


def figures_table(dataset: str, evaluations: dict[str, Evaluation]) -> str:
    labels = list(evaluations)
    header = ["figure", "unit"]
    for label in labels:
        header += [f"{label} (mean ± std)", f"{label} vs floor"]
    header.append("floor")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for figure in FIGURES:
        cells = [figure.label, figure.unit]
        for label in labels:
            values = per_seed(evaluations[label], figure.key)
            cells += [format_figure(values), floor_status(figure, dataset, values)]
        cells.append(floor_text(figure, dataset))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| " + " | ".join(goal_row(evaluations)) + " |")
    return "\n".join(lines)


def per_seed_table(evaluations: dict[str, Evaluation]) -> str:
    header = ["configuration", "seed", "best single acc %", *[f.label for f in FIGURES]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, evaluation in evaluations.items():
        for split in evaluation.splits:
            cells = [label, str(split.seed), f"{100 * split.best_single.accuracy:.2f}"]
            for figure in FIGURES:
                value = getattr(split.figures, figure.key)
                cells.append("never" if value is None else f"{100 * value:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reference_lines(evaluation: Evaluation) -> list[str]:
    best = evaluation.best_single_mean()
    oracle = evaluation.oracle_mean()
    names = sorted({s.best_single.name for s in evaluation.splits})
    split = evaluation.splits[0]
    return [
        f"- held-out queries per seed: {split.n_test} (fit on {split.n_train})",
        f"- best single model: **{best['model']}**, accuracy {100 * best['accuracy']:.2f}% "
        f"(std {100 * float(np.std(best_single_accuracy(evaluation))):.2f}), "
        f"${best['cost']:.4g} per 1k queries (best single per seed: {', '.join(names)})",
        f"- oracle (cheapest top-scoring model per query): accuracy "
        f"{100 * oracle['accuracy']:.2f}%, ${oracle['cost']:.4g} per 1k queries",
    ]


def singles_table(evaluation: Evaluation) -> str:
    lines = ["| model | accuracy % | $ per 1k queries |", "|---|---|---|"]
    for point in sorted(evaluation.singles_mean(), key=lambda p: p["cost"]):
        lines.append(f"| {point['model']} | {100 * point['accuracy']:.2f} | {point['cost']:.4g} |")
    return "\n".join(lines)


def usage_table(evaluation: Evaluation, alphas: Sequence[float] = USAGE_ALPHAS) -> str:
    curve = evaluation.curve_mean()
    grid = np.asarray(evaluation.alphas)
    rows = [curve[int(np.argmin(np.abs(grid - a)))] for a in alphas]
    header = ["model", *[f"α={r['alpha']:g}" for r in rows]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in rows[0]["usage"]:
        shares = [f"{100 * r['usage'][model]:.1f}" for r in rows]
        lines.append("| " + " | ".join([model, *shares]) + " |")
    lines.append(
        "| *router accuracy %* | " + " | ".join(f"{100 * r['accuracy']:.2f}" for r in rows) + " |"
    )
    lines.append("| *router $ per 1k* | " + " | ".join(f"{r['cost']:.4g}" for r in rows) + " |")
    return "\n".join(lines)


def dataset_section(name: str, data: CalibrationData, evaluations: dict[str, Evaluation]) -> str:
    default = evaluations["default"]
    parts = [
        f"## {name} ({len(data)} queries, {len(data.models)} models)",
        "\n".join(reference_lines(default)),
        "### Single models (seed mean)\n\n" + singles_table(default),
        "### Figures (seed mean ± std over seeds 0-4)\n\n" + figures_table(name, evaluations),
        "### Figures per seed\n\n" + per_seed_table(evaluations),
        "### Table 3 style, default configuration (accuracy %, seed mean; cost $ = total over "
        "the held-out split)\n\n" + default.table(),
    ]
    parts += [
        f"### Model usage shares, {label} (% of held-out queries, seed mean)\n\n"
        + usage_table(evaluation)
        for label, evaluation in evaluations.items()
    ]
    return "\n\n".join(parts)


def preamble() -> str:
    configs = "\n".join(f"- **{label}**: {note}" for label, note in CONFIG_NOTES.items())
    return (
        "# Routing quality\n\n"
        "Command: `python benchmarks/routing_quality.py`. "
        "`evaluate_router`, 5 seeded 70/30 splits (seeds 0-4), default embedder "
        "(WordLlama l2_supercat, 256-d), default alpha grid (51 points, 0 to 1).\n\n"
        f"{configs}\n\n"
        "Figures (../shared/docs/avengers-pro.md): acc@best-cost = best router "
        "accuracy among alpha points costing at most the best single model's cost C*; "
        "cost-to-match / cost-to-95% = cheapest router cost reaching A* / 0.95·A*, as % of "
        "C*; AIQ = mean best reachable accuracy over 200 log-spaced costs between the "
        "cheapest and priciest single model. A figure is computed per seed, then averaged; "
        "± is the std over seeds (ddof=0). Floor = the paper's recipe as measured by the CEO "
        "(256-d static embedder); a target "
        "not reached in every seed counts as BELOW."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    sections = [preamble()]
    for name in DATASETS:
        data = load_data(args.data_dir, name)
        sections.append(dataset_section(name, data, evaluate_configs(data)))
    sections.append(f"_Wall time: {time.perf_counter() - started:.1f} s._")
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
