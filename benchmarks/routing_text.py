"""Which text should routing read: the latest human message, or the whole conversation?

The shared data sets hold single-turn queries, so a chat model serving them sees a system prompt
and one human message. ``routing_text="latest_human"`` (the default) routes on the query alone;
``routing_text="conversation"`` routes on the system prompt and the query, cut to
``routing_text_chars`` (2,000). Both are measured the way ``avengers evaluate`` measures a
router: five seeded 70/30 splits (seeds 0-4, stratified), the router fitted on the training
queries as calibrated (no system prompt), and the held-out queries routed on the text each
option builds from ``[SystemMessage(prompt), HumanMessage(query)]`` with
``langchain_avengers.policies.pins.routing_text``. "query alone, cut" routes on the query
through the conversation option's truncation, to separate the effect of the prompt from that of
the cut. Figures as in ``langchain_avengers.evaluation.evaluate`` (acc@best-cost and AIQ in accuracy
points, cost-to-95% as a fraction of the best single model's cost), mean ± std over seeds, and
the seed-paired AIQ difference against the default.

    python benchmarks/routing_text.py [--data-dir DIR]   # the "Routing text" section of RESULTS.md
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.evaluation.evaluate import (
    DEFAULT_ALPHAS,
    Evaluation,
    evaluate_split,
    split_indices,
)
from langchain_avengers.policies.routing_text import DEFAULT_ROUTING_TEXT_CHARS, routing_text

SEEDS = (0, 1, 2, 3, 4)
DATASETS = ("openrouter_4models", "routerbench_11models")
SHORT_PROMPT = "You are a helpful assistant."
LONG_PROMPT = (
    "You are a helpful assistant. Answer the user's question accurately and concisely. "
    "If the question needs reasoning, think step by step before giving the final answer, "
    "and say so when you are not sure."
)
Chars = DEFAULT_ROUTING_TEXT_CHARS


def chat(prompt: str | None, query: str) -> list[BaseMessage]:
    return ([SystemMessage(prompt)] if prompt else []) + [HumanMessage(query)]


OPTIONS: dict[str, Callable[[str], str]] = {
    "latest_human (default)": lambda q: routing_text(chat(SHORT_PROMPT, q), "latest_human"),
    "query alone, cut to 2,000 chars": lambda q: routing_text(chat(None, q), "conversation", Chars),
    f'conversation, prompt "{SHORT_PROMPT}"': lambda q: routing_text(
        chat(SHORT_PROMPT, q), "conversation", Chars
    ),
    "conversation, 3-sentence prompt": lambda q: routing_text(
        chat(LONG_PROMPT, q), "conversation", Chars
    ),
}


def with_test_texts(
    data: CalibrationData, test: np.ndarray, text: Callable[[str], str]
) -> CalibrationData:
    """The data with each held-out query replaced by the text routing would read."""
    queries = list(data.queries)
    for row in test:
        queries[row] = text(queries[row])
    return dataclasses.replace(data, queries=queries)


def evaluate_option(data: CalibrationData, text: Callable[[str], str]) -> Evaluation:
    splits = []
    for seed in SEEDS:
        train, test = split_indices(data, seed=seed)
        routed = with_test_texts(data, test, text)
        splits.append(evaluate_split(routed, ClusterRouter(), train, test, seed=seed))
    return Evaluation(splits=splits, alphas=list(DEFAULT_ALPHAS))


def mean_std(values: list[float | None], scale: float = 1.0, unit: str = "") -> str:
    hits = [v * scale for v in values if v is not None]
    if not hits:
        return "not reached"
    seeds = "" if len(hits) == len(values) else f" ({len(hits)} of {len(values)} seeds)"
    return f"{np.mean(hits):.2f}{unit} ± {np.std(hits):.2f}{seeds}"


def report(name: str, data: CalibrationData) -> None:
    print(f"\n## {name} ({len(data)} queries, {len(data.models)} models)\n")
    print("| routing text | acc@best-cost | cost-to-95% | AIQ | AIQ − default (paired) |")
    print("|---|---|---|---|---|")
    baseline: list[float] | None = None
    for label, text in OPTIONS.items():
        evaluation = evaluate_option(data, text)
        per_seed = [s.figures for s in evaluation.splits]
        aiq = [f.aiq for f in per_seed]
        baseline = baseline or aiq
        diff = 100 * (np.array(aiq) - np.array(baseline))
        print(
            f"| {label} | {mean_std([f.acc_at_best_cost for f in per_seed], 100)} "
            f"| {mean_std([f.cost_to_95 for f in per_seed], 100, '%')} "
            f"| {mean_std(aiq, 100)} | {diff.mean():+.2f} ± {diff.std():.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    print("# Routing text (`python benchmarks/routing_text.py`)\n")
    print(
        "The latest human message (default) against the conversation: seeds 0-4, 70/30 "
        "stratified splits, "
        "default `ClusterRouter()` and WordLlama embedder, fitted on the training queries as "
        "calibrated; held-out queries routed on the text each option reads from a system "
        "prompt and the query. Accuracy figures in points, cost-to-95% in % of the best single "
        "model's cost; mean ± std over seeds."
    )
    for name in DATASETS:
        report(name, load_data(args.data_dir, name))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
