"""Choose the default ClusterRouter options on validation data only.

For every outer seed the usual 70/30 split is made and its 30% test part is never looked at:
the 70% training part is split again (70/30, inner validation), each candidate configuration
is fitted on the inner-train part and scored on the inner-validation part. Candidates are
ranked by their mean rank over data sets and figures (AIQ, cost-to-95%, acc@best-cost).
All at the paper's k = 60, the cluster count when these options were chosen; the automatic
cluster count was chosen afterwards with them (``select_n_clusters.py``).

    python benchmarks/select_defaults.py [--data-dir ../shared/data] > benchmarks/SELECTION.md
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.evaluation.evaluate import evaluate_router, split_indices

DATASETS = ("routerbench_11models", "openrouter_4models")
CANDIDATES = {  # at the paper's k = 60, the default when these options were chosen
    f"cost_scale={c}, cluster_weights={w}, shrinkage={s:g}": {
        "n_clusters": 60,
        "cost_scale": c,
        "cluster_weights": w,
        "shrinkage": s,
    }
    for c, w, s in itertools.product(("linear", "log"), ("uniform", "softmax"), (0.0, 5.0))
}
OUTER_SEEDS = (0, 1, 2, 3, 4)


def validation_figures(data: CalibrationData, params: dict) -> dict[str, float]:
    """Mean inner-validation figures over the outer seeds' training parts."""
    rows = []
    for seed in OUTER_SEEDS:
        train, _test = split_indices(data, seed=seed)
        result = evaluate_router(data.subset(train), ClusterRouter(**params), seeds=[100 + seed])
        f = result.figures
        rows.append(
            (f.aiq, f.cost_to_95 if f.cost_to_95 is not None else np.inf, f.acc_at_best_cost or 0)
        )
    aiq, c95, acc = np.mean(rows, axis=0)
    return {"aiq": aiq, "cost_to_95": c95, "acc_at_best_cost": acc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name in DATASETS:
        data = load_data(args.data_dir, name)
        table[name] = {label: validation_figures(data, p) for label, p in CANDIDATES.items()}
    ranks = {label: [] for label in CANDIDATES}
    for name in DATASETS:
        for figure, higher_is_better in (
            ("aiq", True),
            ("cost_to_95", False),
            ("acc_at_best_cost", True),
        ):
            values = np.array([table[name][label][figure] for label in CANDIDATES])
            order = np.argsort(-values if higher_is_better else values, kind="stable")
            for rank, i in enumerate(order):
                ranks[list(CANDIDATES)[i]].append(rank + 1)
    print("# Default selection on inner validation splits (test splits untouched)\n")
    print(
        "Command: `python benchmarks/select_defaults.py`. Figures in %, inner-validation mean "
        "over 5 outer seeds; rank = mean rank over 2 data sets x 3 figures.\n"
    )
    header = (
        "| configuration | "
        + " | ".join(
            f"{n.split('_')[0]} AIQ | {n.split('_')[0]} c95 | {n.split('_')[0]} acc@C*"
            for n in DATASETS
        )
        + " | mean rank |"
    )
    print(header)
    print("|---" * (2 + 3 * len(DATASETS)) + "|")
    for label in sorted(CANDIDATES, key=lambda lab: np.mean(ranks[lab])):
        cells = []
        for name in DATASETS:
            f = table[name][label]
            cells += [
                f"{100 * f['aiq']:.2f}",
                f"{100 * f['cost_to_95']:.2f}",
                f"{100 * f['acc_at_best_cost']:.2f}",
            ]
        print(f"| {label} | " + " | ".join(cells) + f" | {np.mean(ranks[label]):.2f} |")


if __name__ == "__main__":
    main()
