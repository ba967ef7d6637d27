"""Build ``paper_study.ipynb``: the Avengers-Pro paper's study, redone on the shared data.

The notebook is generated so that it can be reviewed as plain Python and is committed without
outputs. Regenerate, and optionally check that it runs (the file written has no outputs)::

    python notebooks/build_paper_study.py            # write notebooks/paper_study.ipynb
    python notebooks/build_paper_study.py --execute  # ... and run it once with nbclient
"""

# ruff: noqa: T201 - a build script that reports what it did

from __future__ import annotations

import argparse
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "paper_study.ipynb"

DATASETS = {
    "routerbench": "RouterBench subset: 11 models, ARC-Challenge / Winogrande / MBPP",
    "openrouter": "OpenRouter: 4 current models, MMLU, GSM8K, BBH and more (LLM-judged)",
}

INTRO = """\
# Avengers-Pro on the shared calibration data: a paper-style study

Zhang et al., *Beyond GPT-5: Making LLMs Cheaper and Better via Performance-Efficiency Optimized
Routing* (arXiv 2508.12631), route every query to one model of a pool: embed it, find its
nearest k-means clusters, and pick the model with the best `α · accuracy~ + (1 − α) · (1 − cost~)`
summed over those clusters. The paper's protocol is repeated here with this package only:
a seeded 70/30 split, the router fitted on 70% and scored on the routed 30%, for 5 seeds,
over an α grid, beside every single model and the per-query oracle (the cheapest model with
the top score on each query: the ceiling of any router).

Two data sets from `../shared/data` (see its README for provenance and licences):

* **RouterBench subset**: 11 models, 3 benchmarks, 0/1 scores, real USD per query.
* **OpenRouter 4 models**: 4 current OpenRouter models, 20+ tasks, scores graded 0..1 by an LLM
  judge, real USD at OpenRouter prices.

The router is the package default, `ClusterRouter()`, which departs from the paper's recipe in
three measured ways (`benchmarks/SELECTION.md`): it averages three k-means fits (k/2, k and
2k clusters), shrinks small clusters' means toward the pool mean, and scores `expected accuracy
− price(α) · expected cost` instead of the per-cluster min-max; its embedder is the offline WordLlama model, not the paper's Qwen3-Embedding-8B. Costs are in USD per 1,000 held-out queries unless a column
says otherwise (the `cost $` column of the tables is the total over one held-out split).
"""

SETUP = """\
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from IPython.display import Image, Markdown, display

import langchain_avengers
from langchain_avengers.evaluation.evaluate import evaluate_router
from langchain_avengers.evaluation.plots import plot_pareto, plot_usage

# tqdm.auto warns on import in a kernel without ipywidgets, even with progress bars off
warnings.filterwarnings("ignore", message="IProgress not found")


def find_shared_data(start: Path) -> Path:
    \"\"\"``shared/data`` in ``start`` or one of its parents (it sits beside the repository).\"\"\"
    for folder in (start, *start.parents):
        if (folder / "shared" / "data").is_dir():
            return folder / "shared" / "data"
    msg = f"no shared/data above {start}: it must sit beside the repository"
    raise FileNotFoundError(msg)


DATA = find_shared_data(Path.cwd().resolve())
FIGURES = Path(tempfile.mkdtemp(prefix="paper_study_"))
FILES = {"routerbench": "routerbench_11models.jsonl", "openrouter": "openrouter_4models.jsonl"}
display(Markdown(f"kernel `{sys.executable}`, langchain_avengers "
                 f"{langchain_avengers.__version__}, data `{DATA}`"))
"""

EVALUATE = """\
evaluations = {
    name: evaluate_router(DATA / file, seeds=range(5)) for name, file in FILES.items()
}
display(Markdown("\\n".join(
    f"* **{name}**: {ev.splits[0].n_train} queries fitted / {ev.splits[0].n_test} held out "
    f"per seed, {len(ev.splits)} seeds, {len(ev.alphas)} α values; router `{ev.router_params}`"
    for name, ev in evaluations.items()
)))
"""

HELPERS = """\
def pct(value, what=""):
    \"\"\"A fraction as a percentage.\"\"\"
    return f"{100 * value:.2f}%{what}"


def cost_figure(ev, name):
    \"\"\"A cost figure as README and benchmarks/RESULTS.md print it: the seed mean, or the
    mean over the seeds that reach the target and how many do.\"\"\"
    hit = ev.reached()[name]
    if hit["seeds"] == 0:
        return f"never reached (0 of {hit['of']} seeds)"
    text = pct(hit["mean_where_reached"], " of the best model's cost")
    return text if hit["seeds"] == hit["of"] else f"{text} ({hit['seeds']} of {hit['of']} seeds)"


def figures_markdown(ev):
    \"\"\"The four headline figures, with the best single model and the oracle they refer to.\"\"\"
    best, oracle, fig = ev.best_single_mean(), ev.oracle_mean(), ev.figures
    rows = [
        ("best single model", f"{best['model']}: {pct(best['accuracy'])} "
                              f"at ${best['cost']:.3f} per 1k queries"),
        ("oracle (ceiling)", f"{pct(oracle['accuracy'])} at ${oracle['cost']:.3f} per 1k"),
        ("acc@best-cost", pct(fig.acc_at_best_cost, " accuracy")),
        ("cost-to-match", cost_figure(ev, "cost_to_match")),
        ("cost-to-95%", cost_figure(ev, "cost_to_95")),
        ("AIQ", pct(fig.aiq)),
    ]
    gap = ev.oracle_gap()
    rows += [
        ("oracle − router's best", f"{100 * gap['oracle_minus_router']:.1f} pp"),
        ("oracle − best single", f"{100 * gap['oracle_minus_best_single']:.1f} pp"),
    ]
    lines = ["| figure | value (mean of seeds) |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    bench = ev.per_benchmark()
    lines += [
        "",
        f"Per benchmark at α = {bench['alpha']:g} (the router's most accurate point within the "
        f"best single model's cost), accuracy %:",
        "",
        f"| benchmark | router | {bench['best_single']} | router − best (pp) | oracle |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {b['benchmark']} | {100 * b['router']:.1f} | {100 * b['best_single']:.1f} "
        f"| {100 * b['delta']:+.1f} | {100 * b['oracle']:.1f} |"
        for b in bench["benchmarks"]
    ]
    return Markdown("\\n".join(lines))
"""


def dataset_cells(name: str, title: str) -> list[nbformat.NotebookNode]:
    """Table, figures and plots of one data set."""
    return [
        new_markdown_cell(
            f"## {title}\n\n"
            "Per-benchmark accuracy (%) of every single model, the oracle and the router at five "
            "α values, seed-averaged, like the paper's Table 3."
        ),
        new_code_cell(f'display(Markdown(evaluations["{name}"].table()))'),
        new_markdown_cell(
            "The four headline figures (defined in the README's *What the figures mean*): each "
            "is computed per seed and averaged; a cost figure that some seed never reaches is "
            "the mean over the seeds that reach it, with their count."
        ),
        new_code_cell(f'figures_markdown(evaluations["{name}"])'),
        new_markdown_cell(
            "Accuracy against cost over the α sweep (log cost axis), with every single model and "
            "the oracle; then the share of held-out queries each model receives per α."
        ),
        new_code_cell(
            f'ev = evaluations["{name}"]\n'
            f'display(Image(filename=str(plot_pareto(ev, FIGURES / "{name}_pareto.png"))))\n'
            f'display(Image(filename=str(plot_usage(ev, FIGURES / "{name}_usage.png"))))'
        ),
    ]


CLAIMS_INTRO = """\
## The paper's claims, checked

Each row states a claim of the paper (with the paper's own numbers, measured on its 8 models and
6 benchmarks) and what is measured here. Claims about the headline figures follow the figures'
own rule (per seed, against that seed's best single model, then averaged; a target counts in the
seeds that reach it), so they agree with the figures tables above, with `README.md` and with
`benchmarks/RESULTS.md`, and the cell checks that they do. Claims about the curve's shape read
the seed-averaged curve. Everything in the *measured* column is computed in the cell below.
"""

CLAIMS = """\
def cost_to_reach(ev, share):
    \"\"\"Per seed: the router's lowest cost reaching ``share`` of that seed's best single model's
    accuracy, as a fraction of its cost (None where no alpha does); the rule of cost-to-match
    (share 1) and cost-to-95% (share 0.95).\"\"\"
    out = []
    for split in ev.splits:
        best = split.best_single
        costs = [p.cost for p in split.curve if p.accuracy >= share * best.accuracy]
        out.append(min(costs) / best.cost if costs else None)
    return out


def saving(per_seed):
    \"\"\"How much cheaper than the best single model, as the figures tables count it.\"\"\"
    hits = [v for v in per_seed if v is not None]
    if not hits:
        return f"never (in none of {len(per_seed)} seeds)"
    text = f"{100 * (1 - np.mean(hits)):.0f}% lower cost"
    if len(hits) < len(per_seed):
        text += f" in the {len(hits)} of {len(per_seed)} seeds that get there"
    return text


def agree_with_the_figures(ev):
    \"\"\"The claims and the figures tables use one rule: check that they agree.\"\"\"
    reached = ev.reached()
    for share, name in ((1.0, "cost_to_match"), (0.95, "cost_to_95")):
        hits = [v for v in cost_to_reach(ev, share) if v is not None]
        assert len(hits) == reached[name]["seeds"], name
        assert not hits or np.isclose(np.mean(hits), reached[name]["mean_where_reached"]), name


def check_claims(ev):
    \"\"\"(claim, what this evaluation measures) pairs.\"\"\"
    agree_with_the_figures(ev)
    curve, singles = ev.curve_mean(), ev.singles_mean()
    best = ev.best_single_mean()
    alphas = np.array([p["alpha"] for p in curve])
    acc = np.array([p["accuracy"] for p in curve])
    cost = np.array([p["cost"] for p in curve])
    gaps = [s.figures.acc_at_best_cost - s.best_single.accuracy for s in ev.splits]
    top = curve[-1]  # alpha = 1
    rows = [(
        "the router beats the best single model at about its cost (+7% accuracy at α = 1)",
        f"acc@best-cost {100 * ev.figures.acc_at_best_cost:.2f}% against "
        f"{100 * best['accuracy']:.2f}% for {best['model']} ({100 * np.mean(gaps):+.3f} points; "
        f"above it in {sum(g > 0 for g in gaps)} of {len(gaps)} seeds); α = 1: "
        f"{100 * (top['accuracy'] / best['accuracy'] - 1):+.1f}% accuracy (relative) at "
        f"{100 * top['cost'] / best['cost']:.0f}% of its cost",
    )]
    rows.append(("matches the best single model at 27% lower cost (cost-to-match)",
                 saving(cost_to_reach(ev, 1.0))))
    rows.append(("reaches 90% of the best model's accuracy at 63% lower cost",
                 saving(cost_to_reach(ev, 0.9))))
    # a single model lies above the curve if no alpha is at least as accurate for no more cost
    above = [s["model"] for s in singles
             if not ((cost <= s["cost"]) & (acc >= s["accuracy"])).any()]
    rows.append(("no single model lies above the router's α frontier (seed-averaged curve)",
                 "holds" if not above else "above the curve: " + ", ".join(above)))
    gain = acc - acc[0]
    knee = alphas[np.argmax(gain >= 0.9 * gain.max())] if gain.max() > 0 else float("nan")
    rows.append(("accuracy rises fast and plateaus near α ≈ 0.6",
                 f"90% of the α-sweep's accuracy gain is reached at α = {knee:g}"))
    at_04 = cost[np.argmin(np.abs(alphas - 0.4))]
    rows.append(("cost stays low until α ≈ 0.4, then rises sharply",
                 f"cost at α = 0.4 is {100 * at_04 / cost[-1]:.1f}% of the cost at α = 1"))
    price_rank = {s["model"]: r for r, s in enumerate(sorted(singles, key=lambda s: s["cost"]), 1)}
    for a in (0.2, 0.8):
        usage = curve[int(np.argmin(np.abs(alphas - a)))]["usage"]
        model = max(usage, key=usage.get)
        rows.append((f"cheap models dominate at low α, strong ones at high α (α = {a:g})",
                     f"{model} takes {100 * usage[model]:.0f}% of queries; it is the "
                     f"#{price_rank[model]} cheapest of {len(singles)}"))
    return rows


lines = ["| data set | claim (paper) | measured here |", "|---|---|---|"]
for name, ev in evaluations.items():
    lines += [f"| {name} | {claim} | {measured} |" for claim, measured in check_claims(ev)]
display(Markdown("\\n".join(lines)))
"""

CLOSING = """\
## How this compares with the paper

* **Same method, different evidence.** The paper's pool (GPT-5, Gemini-2.5-pro, ...) and its six
  hard benchmarks are not available offline; these two data sets are older or easier, so the
  size of the gains is not comparable, only their shape. Read every verdict from the table above,
  which is computed, not from this text.
* **Where the spread in accuracy is small, cost decides.** On the OpenRouter set the strong models'
  scores are compressed (see the data README), so the router's value shows up as a large saving
  at near-best accuracy rather than as an accuracy gain over the best model. A claim about
  *beating* the best model needs a pool whose members are good on different queries.
* **"Matching the best" is strict.** `cost-to-match` is met only in the seeds that reach the best
  single model's accuracy; the count shown with it says in how many that happens.
* **The oracle is the headroom.** The gap between the oracle and the router's most accurate
  point (printed with the figures, with the per-benchmark picture of where the router gains and
  loses against the best single model) is what a better embedder (the paper uses
  Qwen3-Embedding-8B; here a 256-d WordLlama model), more
  clusters or more calibration data could recover; it is not evidence about the paper's setting.
* **Deviations from the paper's defaults** are the package's (`ClusterRouter` docstring: the
  k-means ensemble, shrinkage of small clusters and the utility score); the `router` line printed above the tables lists them.
"""


def build() -> nbformat.NotebookNode:
    """The notebook, without outputs."""
    cells = [
        new_markdown_cell(INTRO),
        new_code_cell(SETUP),
        new_markdown_cell(
            "Evaluate the default router on both data sets: five seeded splits each, "
            "the α grid of `evaluate_router` (0 to 1 in steps of 0.02)."
        ),
        new_code_cell(EVALUATE),
        new_code_cell(HELPERS),
    ]
    for name, title in DATASETS.items():
        cells += dataset_cells(name, title)
    cells += [new_markdown_cell(CLAIMS_INTRO), new_code_cell(CLAIMS), new_markdown_cell(CLOSING)]
    for number, cell in enumerate(cells, 1):
        cell.id = f"cell-{number:02d}"  # stable ids keep regenerated files diffable
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def execute(notebook: nbformat.NotebookNode) -> None:
    """Run it in ``notebooks/`` (in place) and print every cell's text and Markdown output."""
    from nbclient import NotebookClient

    started = time.perf_counter()
    NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(HERE)}}
    ).execute()
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/markdown")
            if text:
                print(text)
    print(f"executed in {time.perf_counter() - started:.1f} s")


def main() -> None:
    """Write the notebook (and run it once with ``--execute``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true", help="run it once with nbclient")
    args = parser.parse_args()
    if args.execute:
        execute(build())
    notebook = build()  # what is committed: no outputs, no execution metadata
    nbformat.validate(notebook)
    nbformat.write(notebook, NOTEBOOK)
    print(f"wrote {NOTEBOOK.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
