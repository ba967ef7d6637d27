"""The ``avengers`` command: one thin subcommand per task of the library.

fit, evaluate, alphas, reprice, route, demo, catalog, calibrate, regrade, merge and harvest.

Bad input ends with one line on stderr (``avengers: error: ...``) and exit status 2; warnings
are one line too (``avengers: warning: ...``). Text from data (model ids, queries, answers) is
printed with control characters escaped, so a file cannot drive the terminal; ``--json`` output
is strict JSON (NaN and infinities become ``null``). When the reader of stdout goes away
(``avengers demo | head -1``), the command ends quietly with status 141, as a program
stopped by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_avengers._utils.extras import check_installed
from langchain_avengers._utils.money import format_usd
from langchain_avengers._version import __version__
from langchain_avengers.catalog.base import INPUT_KINDS as INPUT_KINDS
from langchain_avengers.cli.args import (
    EXIT_BAD_INPUT,
    _alpha,
    _confidence,
    _fraction,
    _n_clusters,
    _non_negative_float,
    _png_path,
    _positive_float,
    _positive_int,
)
from langchain_avengers.cli.calibration import EXIT_INCOMPLETE as EXIT_INCOMPLETE
from langchain_avengers.cli.calibration import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from langchain_avengers.cli.calibration import (
    add_calibration_parsers,
    cmd_calibrate,
    cmd_merge,
    cmd_regrade,
)
from langchain_avengers.cli.catalog import add_catalog_parser, cmd_catalog
from langchain_avengers.cli.learning import (
    add_harvest_parser,
    add_off_policy_options,
    cmd_evaluate_logged,
    cmd_harvest,
    is_logged_file,
)
from langchain_avengers.cli.output import (
    EXIT_STDOUT_CLOSED,
    TerminalSafeOutput,
    silence_stdout,
    strict_json,
    terminal_safe,
)
from langchain_avengers.cli.route import (
    DEFAULT_ROUTER,
    DEMO_ALPHAS,
    cmd_demo,
    cmd_route,
    load_router,
)
from langchain_avengers.cli.route import DEMO_QUERIES as DEMO_QUERIES
from langchain_avengers.evaluation.budgets import DEFAULT_CONFIDENCE
from langchain_avengers.records.format import RecordsError
from langchain_avengers.routing.persistence import RouterFileError

if TYPE_CHECKING:
    from langchain_avengers.evaluation.evaluate import Evaluation
    from langchain_avengers.records.data import CalibrationData
    from langchain_avengers.routing.router import ClusterRouter

ROUTER_HELP = (
    f"router directory written by `avengers fit`, or `{DEFAULT_ROUTER}` for the "
    f"bundled router (./{DEFAULT_ROUTER} for a directory of that name)"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="avengers", description="Avengers-Pro routing: fit, evaluate and use routers."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit a router from calibration records (JSONL)")
    fit.add_argument("data", type=Path, help="calibration records, JSONL")
    fit.add_argument("-o", "--output", type=Path, required=True, help="router directory to write")
    _add_router_options(fit)
    _add_catalog_option(fit)
    _add_strict_option(fit)

    ev = sub.add_parser("evaluate", help="evaluate the router against every single model")
    ev.add_argument("data", type=Path, help="calibration records, JSONL")
    ev.add_argument("--seeds", type=_positive_int, default=5, help="number of seeded splits")
    ev.add_argument("--alphas", type=_alpha, nargs="+", help="alpha grid (default 0..1 by 0.02)")
    ev.add_argument("--test-size", type=_fraction, default=0.3, help="held-out fraction (0.3)")
    ev.add_argument(
        "--plot",
        type=_png_path,
        help="write the accuracy-cost plot here (PNG); the "
        "usage plot goes beside it as NAME_usage.png",
    )
    ev.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (NaN as null)"
    )
    budget = ev.add_mutually_exclusive_group()
    budget.add_argument(
        "--target-cost", type=_positive_float, help="choose alpha for this USD per 1,000 queries"
    )
    budget.add_argument(
        "--min-accuracy", type=_fraction, help="cheapest alpha reaching this accuracy (0-1)"
    )
    ev.add_argument(
        "--confidence",
        type=_confidence,
        default=DEFAULT_CONFIDENCE,
        help=f"probability that a budget's bound holds on fresh queries ({DEFAULT_CONFIDENCE})",
    )
    _add_router_options(ev)
    _add_catalog_option(ev)
    _add_strict_option(ev)
    add_off_policy_options(ev)
    _add_reprice_parser(sub)
    add_harvest_parser(sub)

    route = sub.add_parser("route", help="show which model a router picks for a query")
    route.add_argument("router", help=ROUTER_HELP)
    route.add_argument("query", help="the query text")
    route.add_argument("--alpha", type=_alpha, default=0.5, help="accuracy weight in [0, 1]")
    route.add_argument("--models", nargs="+", help="restrict the candidate models")
    route.add_argument("--json", action="store_true", help="print the decision as JSON")

    alphas = sub.add_parser(
        "alphas",
        help="what each alpha costs: expected accuracy and USD per 1,000 queries of a router",
        description="Expected accuracy and USD per 1,000 queries at each alpha, from the "
        "router's own per-cluster estimates over its cluster centroids (weighted by their "
        "calibration queries), or over the queries of --data, whose recorded scores and costs "
        "for the chosen models are shown too.",
    )
    alphas.add_argument("router", help=ROUTER_HELP)
    alphas.add_argument(
        "--data",
        type=Path,
        help="calibration records (JSONL) whose queries to route; adds measured columns",
    )
    alphas.add_argument(
        "--alphas", type=_alpha, nargs="+", help="alphas to tabulate (default 0..1 by 0.1)"
    )
    alphas.add_argument("--models", nargs="+", help="restrict the candidate models")
    alphas.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _add_catalog_option(alphas)
    _add_strict_option(alphas)

    demo = sub.add_parser("demo", help="route sample queries with the bundled router (no key)")
    demo.add_argument("--alphas", type=_alpha, nargs="+", default=list(DEMO_ALPHAS))
    add_catalog_parser(sub)
    add_calibration_parsers(sub)
    return parser


def _add_router_options(parser: argparse.ArgumentParser) -> None:
    from langchain_avengers.routing.router import ClusterRouter

    defaults = ClusterRouter().get_params()  # the CLI's defaults are the estimator's own
    parser.add_argument(
        "--n-clusters",
        type=_n_clusters,
        default=defaults["n_clusters"],
        help="k-means clusters, or auto (default): round(sqrt(queries)), from 2 to 60",
    )
    parser.add_argument(
        "--nearest-clusters",
        type=_positive_int,
        default=defaults["nearest_clusters"],
        help="nearest clusters used (4; at most the number of clusters)",
    )
    parser.add_argument(
        "--scoring",
        choices=("utility", "minmax"),
        default=defaults["scoring"],
        help="expected accuracy minus a price of cost (default) or per-cluster min-max (the paper)",
    )
    parser.add_argument(
        "--cluster-scales",
        type=_positive_float,
        nargs="+",
        default=list(defaults["cluster_scales"]),
        help="one k-means fit per scale, times the cluster count, averaged "
        "(default 0.5 1 2; 1 = the paper's single fit)",
    )
    parser.add_argument(
        "--cost-scale",
        choices=("log", "linear"),
        default=defaults["cost_scale"],
        help="score raw cost (default, the paper) or log cost",
    )
    parser.add_argument(
        "--shrinkage",
        type=_non_negative_float,
        default=defaults["shrinkage"],
        help="pseudo-count pulling small clusters toward the pool mean (default 10; 0 = the paper)",
    )
    parser.add_argument(
        "--random-state", type=int, default=defaults["random_state"], help="k-means seed"
    )


def _router_from_args(args: argparse.Namespace) -> ClusterRouter:
    from langchain_avengers.routing.router import ClusterRouter

    return ClusterRouter(
        n_clusters=args.n_clusters,
        nearest_clusters=args.nearest_clusters,
        scoring=args.scoring,
        cluster_scales=tuple(args.cluster_scales),
        cost_scale=args.cost_scale,
        shrinkage=args.shrinkage,
        random_state=args.random_state,
        show_progress=True,
    )


def _add_catalog_option(
    parser: argparse.ArgumentParser, purpose: str = "for answers with tokens but no cost"
) -> None:
    parser.add_argument(
        "--catalog",
        default="auto",
        metavar="auto|bundled|live|FILE",
        help=f"list prices {purpose} (auto: live over bundled)",
    )


def _add_strict_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse unknown top-level fields in the records (default: a warning)",
    )


def _load_data(args: argparse.Namespace) -> CalibrationData:
    from langchain_avengers.records.data import CalibrationData

    return CalibrationData.from_path(args.data, catalog=args.catalog, strict=args.strict)


def cmd_fit(args: argparse.Namespace) -> None:
    """Fit and save a router."""
    check_installed("sklearn", "train", "avengers fit")
    data = _load_data(args)
    _refuse_unsavable_model_ids(data.models, args.data)
    router = _router_from_args(args).fit(data)
    router.save(args.output)
    chosen = " (n_clusters=auto)" if router.n_clusters == "auto" else ""
    clamped = (
        f" ({router.nearest_clusters} clamped to the clusters)"
        if router.nearest_clusters != router.nearest_clusters_
        else ""
    )
    print(
        f"fitted {router.n_clusters_} clusters{chosen} on {router.n_samples_fit_} queries, "
        f"nearest_clusters {router.nearest_clusters_}{clamped}; "
        f"{_count(len(router.models_), 'model')}: "
        f"{', '.join(router.models_)}; "
        f"wrote {args.output}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _refuse_unsavable_model_ids(models: Sequence[str], source: object) -> None:
    """Refuse before fitting a model id that saving the router would refuse after it."""
    from langchain_avengers.routing.checks import describe, model_id_problem

    for model in models:
        if (problem := model_id_problem(model)) is not None:
            msg = (
                f"{source}: model id {describe(model)} {problem}; a router cannot be saved with it"
            )
            raise RecordsError(msg)


def _add_reprice_parser(sub: argparse._SubParsersAction) -> None:
    reprice = sub.add_parser(
        "reprice", help="recompute every cost from stored tokens and current list prices"
    )
    reprice.add_argument("data", type=Path, help="calibration records, JSONL (only read)")
    reprice.add_argument("-o", "--output", type=Path, required=True, help="repriced JSONL to write")
    _add_catalog_option(reprice, "to reprice with")
    reprice.add_argument(
        "--strict", action="store_true", help="refuse answers without token counts"
    )


def cmd_reprice(args: argparse.Namespace) -> None:
    """Write a copy of the records with costs from tokens and the catalog's prices."""
    from langchain_avengers.records.pricing import reprice_file

    summary = reprice_file(args.data, args.output, args.catalog, strict=args.strict)
    print(f"avengers: {summary.describe()}; wrote {args.output}", file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Evaluate the default configuration over seeded splits (off-policy on logged records)."""
    if args.router is not None or is_logged_file(args.data):
        cmd_evaluate_logged(args)
        return
    check_installed("sklearn", "train", "avengers evaluate")
    from langchain_avengers.evaluation.evaluate import DEFAULT_ALPHAS, evaluate_router

    if args.plot:
        from langchain_avengers.evaluation.plots import require_matplotlib

        require_matplotlib()  # before the evaluation, which takes a while
    evaluation = evaluate_router(
        _load_data(args),
        _router_from_args(args),
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
        "queries; 'split cost' = total USD over one held-out split "
        f"({evaluation.splits[0].n_test} queries); nan = a benchmark absent from the split."
    )
    print(
        f"\nheld-out figures, mean of {len(evaluation.splits)} seeds "
        f"(best single: {best['model']}, {100 * best['accuracy']:.2f}% at "
        f"{format_usd(best['cost'])} per 1,000 queries):"
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


def cmd_alphas(args: argparse.Namespace) -> None:
    """Print what each alpha costs and how accurate it is expected to be."""
    from langchain_avengers.evaluation.alphas import DEFAULT_TABLE_ALPHAS, alpha_table

    router = load_router(args.router)
    data = _load_data(args) if args.data is not None else None
    table = alpha_table(
        router, args.alphas or DEFAULT_TABLE_ALPHAS, data=data, allowed_models=args.models
    )
    if args.json:
        print(
            strict_json(
                {"router": args.router, "data": args.data and str(args.data), **table.to_dict()}
            )
        )
        return
    print(
        f"router {args.router!r}: {_count(len(table.models), 'model')}, fitted on "
        f"{router.n_samples_fit_:,} queries"
    )
    print(f"computed on {table.basis}")
    print("expected = the router's own per-cluster estimates of the chosen model\n")
    print(table.table())
    for note in table.notes:
        print(f"\n{note}")


COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {
    "fit": cmd_fit,
    "evaluate": cmd_evaluate,
    "alphas": cmd_alphas,
    "reprice": cmd_reprice,
    "route": cmd_route,
    "demo": cmd_demo,
    "catalog": cmd_catalog,
    "calibrate": cmd_calibrate,
    "regrade": cmd_regrade,
    "merge": cmd_merge,
    "harvest": cmd_harvest,
}


def _one_line(message: object) -> str:
    return terminal_safe(" ".join(str(message).split()))


def _warning_line(
    message: Warning | str, category: type[Warning], *args: object, **kwargs: object
) -> None:
    print(f"avengers: warning: {_one_line(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; bad input gives one error line and exit status 2."""
    args = build_parser().parse_args(argv)
    stdout = sys.stdout
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line
        try:
            sys.stdout = TerminalSafeOutput(stdout)
            status = COMMANDS[args.command](args) or 0
            sys.stdout.flush()
        except BrokenPipeError:
            silence_stdout()
            return EXIT_STDOUT_CLOSED
        except (RecordsError, RouterFileError, ValueError, OSError, ImportError) as exc:
            print(f"avengers: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        finally:
            sys.stdout = stdout
    return status


if __name__ == "__main__":
    sys.exit(main())
