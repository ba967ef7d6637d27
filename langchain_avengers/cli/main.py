"""The ``avengers`` command: one thin subcommand per task of the library.

fit, evaluate, alphas, reprice, route, demo, catalog, calibrate, regrade and merge.

Bad input ends with one line on stderr (``avengers: error: ...``) and exit status 2; warnings
are one line too (``avengers: warning: ...``). Text from data (model ids, queries, answers) is
printed with control characters escaped, so a file cannot drive the terminal; ``--json`` output
is strict JSON (NaN and infinities become ``null``). When the reader of stdout goes away
(``avengers demo | head -1``), the command ends quietly with status 141, as a program
stopped by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_avengers._utils.extras import check_installed
from langchain_avengers._version import __version__
from langchain_avengers.catalog.base import INPUT_KINDS as INPUT_KINDS
from langchain_avengers.cli.args import (  # split
    EXIT_BAD_INPUT,
    _alpha,
    _confidence,
    _fraction,
    _n_clusters,
    _non_negative_float,
    _png_path,
    _positive_float,
    _positive_int,
    load_data,
    router_from_args,
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
from langchain_avengers.cli.evaluate import (  # split
    cmd_evaluate,
)
from langchain_avengers.cli.output import (
    EXIT_STDOUT_CLOSED,
    TerminalSafeOutput,
    silence_stdout,
    strict_json,
    terminal_safe,
)
from langchain_avengers.evaluation.budgets import DEFAULT_CONFIDENCE
from langchain_avengers.records.format import RecordsError
from langchain_avengers.routing.persistence import RouterFileError

if TYPE_CHECKING:
    from langchain_avengers.routing.router import ClusterRouter

DEFAULT_ROUTER = "default"
DEMO_QUERIES = (
    "What is the capital of Australia?",
    "Write a Python function that merges two sorted lists in linear time.",
    "A train leaves at 3:40 pm and arrives at 6:15 pm. How long is the trip in minutes?",
    "Prove that there are infinitely many primes congruent to 3 mod 4.",
    "Which of these is a mammal? (A) shark (B) dolphin (C) trout (D) octopus",
    "Summarise the causes of the French Revolution in three bullet points.",
)
DEMO_ALPHAS = (0.2, 0.5, 0.8, 1.0)
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
    _add_reprice_parser(sub)

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


def cmd_fit(args: argparse.Namespace) -> None:
    """Fit and save a router."""
    check_installed("sklearn", "train", "avengers fit")
    data = load_data(args)
    _refuse_unsavable_model_ids(data.models, args.data)
    router = router_from_args(args).fit(data)
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


def _load_router(name: str) -> ClusterRouter:
    from langchain_avengers.routing.bundled import load_default_router
    from langchain_avengers.routing.router import ClusterRouter

    if name == DEFAULT_ROUTER:
        return load_default_router()
    return ClusterRouter.load(Path(name))


def cmd_alphas(args: argparse.Namespace) -> None:
    """Print what each alpha costs and how accurate it is expected to be."""
    from langchain_avengers.evaluation.alphas import DEFAULT_TABLE_ALPHAS, alpha_table

    router = _load_router(args.router)
    data = load_data(args) if args.data is not None else None
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


def cmd_route(args: argparse.Namespace) -> None:
    """Route one query with a saved router."""
    router = _load_router(args.router)
    decision = router.route(args.query, args.alpha, allowed_models=args.models)
    if args.json:
        print(strict_json(decision.to_dict()))
        return
    print(f"{decision.model}  (alpha={decision.alpha:g})")
    for c in decision.candidates:
        print(
            f"  {c.model:40s} score {c.score:7.3f}  expected accuracy "
            f"{100 * c.expected_accuracy:5.1f}%  expected ${1000 * c.expected_cost:.4f} / 1k"
        )


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
            cost = 1000 * decision.chosen.expected_cost
            print(f"  alpha={alpha:<4g} -> {decision.model:36s} (${cost:.3f} / 1k)")
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
    print(f"\n{query}\n-> {meta['model']} answered (cost ${meta['actual_cost']}):")
    print(message.content)


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
