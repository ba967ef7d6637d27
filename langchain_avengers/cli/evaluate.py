"""``avengers evaluate``: the router against every single model, over seeded splits."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from langchain_avengers._utils.extras import check_installed
from langchain_avengers.catalog.base import INPUT_KINDS as INPUT_KINDS
from langchain_avengers.cli.args import load_data, router_from_args
from langchain_avengers.cli.calibration import EXIT_INCOMPLETE as EXIT_INCOMPLETE
from langchain_avengers.cli.calibration import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from langchain_avengers.cli.output import (
    strict_json,
)

if TYPE_CHECKING:
    from langchain_avengers.evaluation.evaluate import Evaluation


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Evaluate the default configuration over seeded splits."""
    check_installed("sklearn", "train", "avengers evaluate")
    from langchain_avengers.evaluation.evaluate import DEFAULT_ALPHAS, evaluate_router

    if args.plot:
        from langchain_avengers.evaluation.plots import require_matplotlib

        require_matplotlib()  # before the evaluation, which takes a while
    evaluation = evaluate_router(
        load_data(args),
        router_from_args(args),
        alphas=args.alphas or DEFAULT_ALPHAS,
        seeds=range(args.seeds),
        test_size=args.test_size,
        show_progress=not args.json,
    )
    choice = None
    if args.target_cost is not None or args.min_accuracy is not None:
        choice = evaluation.choose_alpha(
            target_cost=args.target_cost,
            min_accuracy=args.min_accuracy,
            confidence=args.confidence,
        )
    if args.plot:
        from langchain_avengers.evaluation.plots import plot_pareto, plot_usage

        usage_plot = args.plot.with_name(f"{args.plot.stem}_usage{args.plot.suffix}")
        plot_pareto(evaluation, args.plot)
        plot_usage(evaluation, usage_plot)
        print(f"avengers: wrote {args.plot} and {usage_plot}", file=sys.stderr)
    if args.json:
        report = {"data": str(args.data), **evaluation.to_dict()}
        if choice is not None:
            asked = {"target_cost": args.target_cost, "min_accuracy": args.min_accuracy}
            report["budget_choice"] = {**asked, **choice.__dict__}
        print(strict_json(report))
        return
    _print_evaluation(evaluation)
    if choice is not None:
        asked_for = (
            f"at most ${args.target_cost:g} per 1,000 queries"
            if args.target_cost is not None
            else f"at least {args.min_accuracy:.1%} accuracy"
        )
        print(f"\nbudget ({asked_for}): {choice.describe()}")


def _print_evaluation(evaluation: Evaluation) -> None:
    figures = evaluation.figures
    best = evaluation.best_single_mean()

    reached = evaluation.reached()

    def pct(value: float | None, name: str = "") -> str:
        if value is not None:
            return f"{100 * value:.2f}%"
        hit = reached.get(name, {"seeds": 0})
        if not hit["seeds"]:
            return "not reached"
        where = 100 * hit["mean_where_reached"]
        return f"not reached in every seed ({hit['seeds']}/{hit['of']}; {where:.2f}% where reached)"

    print(evaluation.table())
    print(
        "\nAccuracy in %, seed mean; 'avg' = mean over benchmarks, 'all' = over all held-out "
        "queries; 'split cost $' = total USD over one held-out split "
        f"({evaluation.splits[0].n_test} queries); nan = a benchmark absent from the split."
    )
    print(
        f"\nheld-out figures, mean of {len(evaluation.splits)} seeds "
        f"(best single: {best['model']}, {100 * best['accuracy']:.2f}% at "
        f"${best['cost']:.4g} per 1,000 queries):"
    )
    print(f"  acc@best-cost  {pct(figures.acc_at_best_cost, 'acc_at_best_cost')}")
    print(f"  cost-to-match  {pct(figures.cost_to_match, 'cost_to_match')} of the best cost")
    print(f"  cost-to-95%    {pct(figures.cost_to_95, 'cost_to_95')} of the best cost")
    print(f"  AIQ            {pct(figures.aiq)}")
    _print_oracle_gap(evaluation)


def _print_oracle_gap(evaluation: Evaluation) -> None:
    gap = evaluation.oracle_gap()
    print(
        f"\noracle (cheapest top-scoring model per query): {100 * gap['oracle_accuracy']:.2f}%; "
        f"it is {100 * gap['oracle_minus_router']:.2f} pp above the router's most accurate "
        f"point and {100 * gap['oracle_minus_best_single']:.2f} pp above the best single model"
    )
    bench = evaluation.per_benchmark()
    deltas = ", ".join(f"{b['benchmark']} {100 * b['delta']:+.2f}" for b in bench["benchmarks"])
    print(
        f"per benchmark at alpha={bench['alpha']:g} (the router's most accurate point within "
        f"the best single model's cost), router minus {bench['best_single']} in pp: {deltas}"
    )
