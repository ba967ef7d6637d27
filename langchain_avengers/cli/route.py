"""``avengers route`` and ``demo``: which model a router picks for a query, and why.

A candidate's raw score is only meaningful next to the others of the same decision: under the
default utility scoring it is ``expected accuracy - price x expected cost`` with a price that
alpha sets (so it is often negative, and at alpha 0 it is minus a tiny cost that printed as
``-0.000``). The table therefore shows what the score is made of (expected accuracy and
expected USD per call, with significant digits) and each candidate's score relative to the
chosen one, in units a reader can weigh, under a line that says what the price means.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_avengers._utils.money import format_usd
from langchain_avengers.cli.output import strict_json

if TYPE_CHECKING:
    from langchain_avengers.routing.decision import CandidateScore, RoutingDecision
    from langchain_avengers.routing.router import ClusterRouter

DEFAULT_ROUTER = "default"
"""The router argument that names the bundled router."""
HEADERS = ("model", "expected accuracy", "expected $ per call", "vs chosen")
_Versus = Callable[["CandidateScore", "CandidateScore"], str]
"""How one candidate compares with the chosen one, as printed."""
DEMO_QUERIES = (
    "What is the capital of Australia?",
    "Write a Python function that merges two sorted lists in linear time.",
    "A train leaves at 3:40 pm and arrives at 6:15 pm. How long is the trip in minutes?",
    "Prove that there are infinitely many primes congruent to 3 mod 4.",
    "Which of these is a mammal? (A) shark (B) dolphin (C) trout (D) octopus",
    "Summarise the causes of the French Revolution in three bullet points.",
)
DEMO_ALPHAS = (0.2, 0.5, 0.8, 1.0)
"""The alphas ``avengers demo`` shows by default."""


def load_router(name: str) -> ClusterRouter:
    """The router a command names: a directory, or ``default`` for the bundled one."""
    from langchain_avengers.routing.bundled import load_default_router
    from langchain_avengers.routing.router import ClusterRouter

    if name == DEFAULT_ROUTER:
        return load_default_router()
    return ClusterRouter.load(Path(name))


def cmd_route(args: argparse.Namespace) -> None:
    """Route one query with a saved router (or the bundled one) and print the decision."""
    router = load_router(args.router)
    decision = router.route(args.query, args.alpha, allowed_models=args.models)
    if args.json:
        print(strict_json(decision.to_dict()))
        return
    print("\n".join(route_report(router, decision)))


def cmd_demo(args: argparse.Namespace) -> None:
    """Show the bundled router's choices for a few varied queries."""
    from langchain_avengers.routing.bundled import load_default_router

    router = load_default_router()
    print(
        f"Bundled router: {len(router.models_)} OpenRouter models, {router.n_clusters_} clusters, "
        f"fitted on {router.n_samples_fit_} labelled queries (ParetoBandit data, Apache-2.0).\n"
        "For each query and alpha: chosen model (expected USD per 1,000 such queries).\n"
    )
    for query in DEMO_QUERIES:
        print(query if len(query) <= 90 else query[:87] + "...")
        for alpha in args.alphas:
            decision = router.route(query, alpha)
            cost = format_usd(1000 * decision.chosen.expected_cost)
            print(f"  alpha={alpha:<4g} -> {decision.model:36s} ({cost} / 1k)")
    if os.environ.get("OPENROUTER_API_KEY"):
        _demo_answer(DEMO_QUERIES[0])
    else:
        print("\nSet OPENROUTER_API_KEY to also get an answer through AvengersChatModel.")


def _demo_answer(query: str) -> None:
    import openai

    from langchain_avengers.chat_models.base import AvengersChatModel

    try:
        message = AvengersChatModel(alpha=0.5).invoke(query)
    except (openai.APIError, ValueError) as exc:
        print(f"\nNo live answer: {type(exc).__name__}: {' '.join(str(exc).split())}")
        return
    meta = message.response_metadata["avengers"]
    print(f"\n{query}\n-> {meta['model']} answered (cost {format_usd(meta['actual_cost'])}):")
    print(message.content)


def route_report(router: ClusterRouter, decision: RoutingDecision) -> list[str]:
    """The lines ``avengers route`` prints: the choice, a table of candidates, what it means.

    Args:
        router: The router that made ``decision`` (its scoring and price schedule).
        decision: One query's routing decision.

    Returns:
        The chosen model and alpha, a header and one row per candidate (best first), then one
        or two lines explaining the score and the ``vs chosen`` column.
    """
    chosen = decision.chosen
    explanation, versus = _explain(router, decision)
    rows = [HEADERS] + [
        (
            c.model,
            f"{100 * c.expected_accuracy:.1f}%",
            format_usd(c.expected_cost),
            "chosen" if i == 0 else versus(c, chosen),
        )
        for i, c in enumerate(decision.candidates)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    table = [
        "  "
        + row[0].ljust(widths[0])
        + "".join("  " + cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        for row in rows
    ]
    return [f"{decision.model}  (alpha={decision.alpha:g})", *table, *explanation]


def _explain(router: ClusterRouter, decision: RoutingDecision) -> tuple[list[str], _Versus]:
    """What the scores mean for this router at this alpha, and how to print ``vs chosen``."""
    alpha = decision.alpha
    if router.scoring == "minmax":
        n = decision.nearest_clusters
        return [
            f"Score (the paper's): over the {n} nearest clusters, alpha x normalised accuracy "
            "+ (1 - alpha) x (1 - normalised cost), summed;",
            "vs chosen: each candidate's score minus the chosen model's (higher is better).",
        ], _score_points
    if alpha <= 0:
        return [
            "At alpha 0 the cheapest expected cost wins and accuracy is ignored;",
            "vs chosen: how much more each candidate is expected to cost per call.",
        ], _extra_cost
    if alpha >= 1:
        return [
            "At alpha 1 the highest expected accuracy wins; cost only breaks ties;",
            "vs chosen: each candidate's expected accuracy minus the chosen model's, in points.",
        ], _accuracy_points
    from langchain_avengers.routing.scoring import utility_weights

    price = utility_weights(alpha, router.log_prices_)[1]
    if router.cost_scale == "log":
        dearer = 100 * math.expm1(0.01 / price)
        formula = f"{price:.4g} x ln(expected $ per call)"
        worth = f"{dearer:.3g}% more cost per call"
    else:
        formula = f"{price:.4g} x expected $ per call"
        worth = f"{format_usd(0.01 / price * 1000)} per 1,000 calls"
    return [
        f"Utility = expected accuracy - {formula} (the price at alpha={alpha:g}):",
        f"  one accuracy point is worth {worth};",
        "vs chosen: each candidate's utility minus the chosen model's, in accuracy points.",
    ], _accuracy_points


def _accuracy_points(candidate: CandidateScore, chosen: CandidateScore) -> str:
    return _signed(100 * (candidate.score - chosen.score), 2) + " pts"


def _score_points(candidate: CandidateScore, chosen: CandidateScore) -> str:
    return _signed(candidate.score - chosen.score, 3)


def _extra_cost(candidate: CandidateScore, chosen: CandidateScore) -> str:
    extra = candidate.expected_cost - chosen.expected_cost
    return ("+" if extra > 0 else "-" if extra < 0 else "") + format_usd(abs(extra))


def _signed(value: float, decimals: int) -> str:
    """``value`` with its sign and ``decimals`` decimals; what rounds to zero has no sign.

    A tiny negative difference must not print as ``-0.00``.
    """
    rounded = round(value, decimals)
    if rounded == 0:
        return f"{0.0:.{decimals}f}"
    return f"{rounded:+.{decimals}f}"
