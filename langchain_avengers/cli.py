"""The ``avengers`` command: one thin subcommand per task of the library.

fit, evaluate, reprice, route, demo, catalog, calibrate, regrade and merge.

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

from langchain_avengers._cli_output import (
    EXIT_STDOUT_CLOSED,
    TerminalSafeOutput,
    silence_stdout,
    strict_json,
    terminal_safe,
)
from langchain_avengers._persistence import RouterFileError
from langchain_avengers._version import __version__
from langchain_avengers.budgets import DEFAULT_CONFIDENCE
from langchain_avengers.catalog import INPUT_KINDS
from langchain_avengers.records import RecordsError

if TYPE_CHECKING:
    from langchain_avengers.evaluation import Evaluation
    from langchain_avengers.records import CalibrationData
    from langchain_avengers.router import ClusterRouter

EXIT_BAD_INPUT = 2
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


def _alpha(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        msg = f"alpha must be in [0, 1], got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        msg = f"expected a fraction strictly between 0 and 1, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _confidence(text: str) -> float:
    value = float(text)
    if not 0.5 <= value < 1:
        msg = f"expected a probability in [0.5, 1), got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        msg = f"expected a positive number, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        msg = f"expected a positive integer, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _n_clusters(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except (ValueError, argparse.ArgumentTypeError):
        msg = f"expected 'auto' or a positive integer, got {text}"
        raise argparse.ArgumentTypeError(msg) from None


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
        type=Path,
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
    route.add_argument(
        "router",
        help=f"router directory written by `avengers fit`, or `{DEFAULT_ROUTER}` for the "
        f"bundled router (./{DEFAULT_ROUTER} for a directory of that name)",
    )
    route.add_argument("query", help="the query text")
    route.add_argument("--alpha", type=_alpha, default=0.5, help="accuracy weight in [0, 1]")
    route.add_argument("--models", nargs="+", help="restrict the candidate models")
    route.add_argument("--json", action="store_true", help="print the decision as JSON")

    demo = sub.add_parser("demo", help="route sample queries with the bundled router (no key)")
    demo.add_argument("--alphas", type=_alpha, nargs="+", default=list(DEMO_ALPHAS))
    _add_catalog_parser(sub)
    _add_calibration_parsers(sub)
    return parser


def _add_router_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n-clusters",
        type=_n_clusters,
        default="auto",
        help="k-means clusters, or auto (default): round(sqrt(queries)), from 2 to 60",
    )
    parser.add_argument(
        "--top-p",
        type=_positive_int,
        default=4,
        help="nearest clusters used (4; at most the number of clusters)",
    )
    parser.add_argument(
        "--scoring",
        choices=("utility", "minmax"),
        default="utility",
        help="expected accuracy minus a price of cost (default) or per-cluster min-max (the paper)",
    )
    parser.add_argument(
        "--cluster-scales",
        type=float,
        nargs="+",
        default=[0.5, 1.0, 2.0],
        help="one k-means fit per scale, times the cluster count, averaged "
        "(default 0.5 1 2; 1 = the paper's single fit)",
    )
    parser.add_argument(
        "--cost-scale",
        choices=("log", "linear"),
        default="linear",
        help="score raw cost (default, the paper) or log cost",
    )
    parser.add_argument("--random-state", type=int, default=0, help="k-means seed")


def _router_from_args(args: argparse.Namespace) -> ClusterRouter:
    from langchain_avengers.router import ClusterRouter

    return ClusterRouter(
        n_clusters=args.n_clusters,
        top_p=args.top_p,
        scoring=args.scoring,
        cluster_scales=tuple(args.cluster_scales),
        cost_scale=args.cost_scale,
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
    from langchain_avengers.records import CalibrationData

    return CalibrationData.from_path(args.data, catalog=args.catalog, strict=args.strict)


def cmd_fit(args: argparse.Namespace) -> None:
    """Fit and save a router."""
    router = _router_from_args(args).fit(_load_data(args))
    router.save(args.output)
    chosen = " (n_clusters=auto)" if router.n_clusters == "auto" else ""
    print(
        f"fitted {router.n_clusters_} clusters{chosen} on {router.n_samples_fit_} queries, "
        f"top_p {router.top_p_}; {len(router.models_)} models: {', '.join(router.models_)}; "
        f"wrote {args.output}"
    )


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
    from langchain_avengers.pricing import reprice_file

    summary = reprice_file(args.data, args.output, args.catalog, strict=args.strict)
    print(f"avengers: {summary.describe()}; wrote {args.output}", file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Evaluate the default configuration over seeded splits."""
    from langchain_avengers.evaluation import DEFAULT_ALPHAS, evaluate_router

    if args.plot:
        from langchain_avengers.plotting import require_matplotlib

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
        from langchain_avengers.plotting import plot_pareto, plot_usage

        plot_pareto(evaluation, args.plot)
        plot_usage(evaluation, args.plot.with_name(f"{args.plot.stem}_usage{args.plot.suffix}"))
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


def cmd_route(args: argparse.Namespace) -> None:
    """Route one query with a saved router."""
    from langchain_avengers.pool import load_default_router
    from langchain_avengers.router import ClusterRouter

    if args.router == DEFAULT_ROUTER:
        router = load_default_router()
    else:
        router = ClusterRouter.load(Path(args.router))
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
    from langchain_avengers.pool import load_default_router

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

    from langchain_avengers.chat_models import AvengersChatModel

    try:
        message = AvengersChatModel(alpha=0.5).invoke(query)
    except (openai.APIError, ValueError) as exc:
        print(f"\nNo live answer: {type(exc).__name__}: {' '.join(str(exc).split())}")
        return
    meta = message.response_metadata["avengers"]
    print(f"\n{query}\n-> {meta['model']} answered (cost ${meta['actual_cost']}):")
    print(message.content)


# ---------------------------------------------------------------- catalog


def _add_catalog_parser(sub: argparse._SubParsersAction) -> None:
    catalog = sub.add_parser(
        "catalog", help="the OpenRouter model catalog: summary, refresh, show, list"
    )
    actions = catalog.add_subparsers(dest="catalog_command", metavar="{refresh,show,list}")
    refresh = actions.add_parser("refresh", help="fetch OpenRouter's model list into the cache")
    refresh.add_argument(
        "--base-url", help="API base URL (default: $OPENROUTER_BASE_URL, else OpenRouter)"
    )
    refresh.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds (30)")
    show = actions.add_parser("show", help="print one model's profile")
    show.add_argument("model", help="OpenRouter model id, e.g. openai/gpt-5")
    listing = actions.add_parser("list", help="print a table of models")
    listing.add_argument("--tools", action="store_true", help="only models with tool calling")
    listing.add_argument(
        "--structured-output", action="store_true", help="only models with structured output"
    )
    listing.add_argument(
        "--input",
        choices=INPUT_KINDS,
        nargs="+",
        action="extend",
        default=[],
        help="only models that accept these inputs",
    )
    for parser in (show, listing):
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument(
            "--catalog",
            default="auto",
            metavar="auto|bundled|live|FILE",
            help="catalog to read (default auto: live cache over the bundled snapshot)",
        )


def cmd_catalog(args: argparse.Namespace) -> None:
    """Summarise, refresh, show or list the model catalog."""
    from langchain_avengers import catalog

    if args.catalog_command is None:
        print(catalog.catalog_summary())
    elif args.catalog_command == "refresh":
        fetched = catalog.refresh_catalog(
            args.base_url,
            api_key=os.environ.get("OPENROUTER_API_KEY") or None,
            timeout=args.timeout,
        )
        print(
            f"fetched {len(fetched)} models by {fetched.origin} at {fetched.snapshot}; "
            f"wrote {catalog.catalog_cache_path()}"
        )
    elif args.catalog_command == "show":
        chosen = catalog.load_catalog(args.catalog)
        profile = chosen.lookup(args.model)
        layer = chosen.layer_of(args.model)
        if args.json:
            report = {"model": args.model, "layer": layer, "catalog": chosen.about()}
            print(strict_json({**report, "profile": profile}))
            return
        print(f"{args.model}  ({layer} entry; {chosen.describe()})")
        for key, value in profile.items():
            print(f"  {key:24s} {value}")
    else:
        chosen = catalog.load_catalog(args.catalog)
        models = chosen.select(
            tool_calling=args.tools, structured_output=args.structured_output, inputs=args.input
        )
        if args.json:
            profiles = {m: chosen[m] for m in models}
            print(strict_json({"catalog": chosen.about(), "models": profiles}))
            return
        print(chosen.table(models))
        print(f"\n{len(models)} of {chosen.describe()}; prices in USD per million tokens")


# ---------------------------------------------------------------------- calibration

EXIT_INCOMPLETE = 1
EXIT_INTERRUPTED = 130


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        msg = f"expected 0 or a positive integer, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _model_list(text: str) -> list[str]:
    models = [m.strip() for m in text.split(",") if m.strip()]
    if not models:
        msg = f"expected comma-separated model ids, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return models


def _add_api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help="OpenAI-compatible API (default $OPENROUTER_BASE_URL)")
    parser.add_argument(
        "--api-key-env", default="OPENROUTER_API_KEY", help="variable holding the API key"
    )
    parser.add_argument("--judge-model", help="judge for judge-graded queries that name none")
    parser.add_argument(
        "--max-tokens", type=_positive_int, default=4096, help="output limit per call (4096)"
    )


def _add_calibration_parsers(sub: argparse._SubParsersAction) -> None:
    cal = sub.add_parser("calibrate", help="run a pool of models on labelled queries")
    cal.add_argument("queries", type=Path, help="labelled queries, JSONL (see README)")
    cal.add_argument("--models", type=_model_list, required=True, help="ids, comma-separated")
    cal.add_argument("-o", "--output", type=Path, required=True, help="records file to write")
    cal.add_argument("--dry-run", action="store_true", help="print the estimated cost only")
    cal.add_argument("--max-spend", type=_positive_float, help="USD cap for this run")
    cal.add_argument("--concurrency", type=_positive_int, default=8, help="calls at once (8)")
    cal.add_argument("--per-model-concurrency", type=_positive_int, help="calls at once per model")
    cal.add_argument("--timeout", type=_positive_float, default=180.0, help="s per attempt (180)")
    cal.add_argument(
        "--max-retries", type=_non_negative_int, default=4, help="retries on 429/5xx/timeout (4)"
    )
    cal.add_argument("--save-answers", action="store_true", help="keep answers for `regrade`")
    cal.add_argument("--shard", help="run shard K/N of the pairs (0 <= K < N)")
    cal.add_argument(
        "--assume-output-tokens", type=_positive_int, help="dry run: output tokens per call"
    )
    _add_api_options(cal)

    reg = sub.add_parser("regrade", help="re-score saved answers with the current graders")
    reg.add_argument("queries", type=Path, help="labelled queries, JSONL")
    reg.add_argument("-o", "--output", type=Path, required=True, help="records of calibrate")
    reg.add_argument("--models", type=_model_list, help="models to keep (default: all)")
    reg.add_argument("--allow-judge-calls", action="store_true", help="re-judge judge queries")
    _add_api_options(reg)

    merge = sub.add_parser("merge", help="join record files (e.g. shard outputs)")
    merge.add_argument("files", type=Path, nargs="+", help="calibration-record files")
    merge.add_argument("-o", "--output", type=Path, required=True, help="merged file to write")
    merge.add_argument("--queries", type=Path, help="order rows as in this query file")


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Estimate (``--dry-run``) or run a calibration and summarise it on stderr."""
    from langchain_avengers.calibration import (
        ApiSettings,
        calibrate,
        estimate_calibration,
        load_queries,
    )

    queries = load_queries(args.queries)
    options = {"max_tokens": args.max_tokens, "judge_model": args.judge_model}
    if args.dry_run:
        estimate = estimate_calibration(
            queries,
            args.models,
            args.output,
            shard=args.shard,
            assume_output_tokens=args.assume_output_tokens,
            **options,
        )
        print(estimate.table())
        return 0
    api = ApiSettings.from_env(
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        timeout=args.timeout,
        max_retries=args.max_retries,
    )
    run = calibrate(
        queries,
        args.models,
        args.output,
        api=api,
        concurrency=args.concurrency,
        per_model_concurrency=args.per_model_concurrency,
        max_spend=args.max_spend,
        save_answers=args.save_answers,
        shard=args.shard,
        log=_note,
        **options,
    )
    print(run.describe(), file=sys.stderr)
    if run.stop_reason == "interrupted":
        return EXIT_INTERRUPTED
    if run.stop_reason and run.stop_reason.startswith("the API refused"):
        print(f"avengers: error: {run.stop_reason}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0 if run.complete else EXIT_INCOMPLETE


def cmd_regrade(args: argparse.Namespace) -> None:
    """Re-score saved answers; judge calls only with ``--allow-judge-calls``."""
    from langchain_avengers.calibration import ApiSettings, regrade

    api = None
    if args.allow_judge_calls:
        api = ApiSettings.from_env(base_url=args.base_url, api_key_env=args.api_key_env)
    result = regrade(
        args.queries,
        args.output,
        models=args.models,
        judge_model=args.judge_model,
        allow_judge_calls=args.allow_judge_calls,
        api=api,
        max_tokens=args.max_tokens,
    )
    print(result.describe(), file=sys.stderr)


def cmd_merge(args: argparse.Namespace) -> None:
    """Join record files without duplicates."""
    from langchain_avengers.calibration import load_queries, merge_records

    queries = load_queries(args.queries) if args.queries else None
    result = merge_records(args.files, args.output, queries=queries)
    print(
        f"merged {len(args.files)} files: {result.rows} queries, {result.pairs} pairs "
        f"({result.duplicates} duplicates kept once); wrote {args.output}"
    )


COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {
    "fit": cmd_fit,
    "evaluate": cmd_evaluate,
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
