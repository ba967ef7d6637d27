"""``avengers harvest`` (records from LangSmith) and ``avengers evaluate`` on logged records.

``avengers harvest traces``: logged records from a project's routed calls and their feedback.
``avengers harvest experiments``: calibration records from one experiment per pool model over
a dataset, starting the missing experiments first when evaluators are given (``--evaluator``).
``avengers evaluate LOGGED.jsonl --router DIR``: off-policy estimates of a router on records
logged by another (IPS and doubly robust, with bootstrap intervals and diagnostics).

LangSmith is reached with ``langsmith.Client()``: ``LANGSMITH_API_KEY`` and
``LANGSMITH_ENDPOINT`` from the environment, or ``--langsmith-url``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_avengers._utils.files import write_lines_atomically
from langchain_avengers.cli.args import _alpha, _confidence, _non_negative_float

__all__ = [
    "add_harvest_parser",
    "add_off_policy_options",
    "cmd_evaluate_logged",
    "cmd_harvest",
    "is_logged_file",
]


def _time(text: str) -> datetime.datetime:
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        msg = f"expected an ISO time such as 2026-11-30T12:00:00+00:00, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _scale(text: str) -> tuple[float, float]:
    low, sep, high = text.partition("..")
    try:
        if not sep:
            raise ValueError
        scale = float(low), float(high)
    except ValueError:
        msg = f"expected LOW..HIGH such as 1..5, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not scale[0] < scale[1]:
        msg = f"expected LOW < HIGH, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return scale


def add_harvest_parser(sub: argparse._SubParsersAction) -> None:
    """``avengers harvest traces|experiments``."""
    harvest = sub.add_parser("harvest", help="records from LangSmith traces or experiments")
    kinds = harvest.add_subparsers(dest="kind", required=True)
    traces = kinds.add_parser("traces", help="logged records from routed calls and feedback")
    traces.add_argument("--project", required=True, help="LangSmith project of the chat model")
    traces.add_argument("--since", type=_time, help="runs started at or after (ISO time)")
    traces.add_argument("--until", type=_time, help="runs started before (ISO time)")
    traces.add_argument(
        "--router", help="only runs of this router (a router directory or its data fingerprint)"
    )
    experiments = kinds.add_parser(
        "experiments", help="calibration records from one experiment per pool model"
    )
    experiments.add_argument("--dataset", required=True, help="the LangSmith dataset")
    experiments.add_argument(
        "--experiment",
        action="append",
        metavar="NAME=MODEL",
        help="an experiment and its model (repeat); default every experiment on the dataset",
    )
    experiments.add_argument("--input-key", help="example input holding the query text")
    experiments.add_argument("--models", nargs="+", help="pool models to run (with --evaluator)")
    experiments.add_argument(
        "--evaluator",
        action="append",
        metavar="MODULE:NAME",
        help="a langsmith evaluator to run the missing experiments with (repeat)",
    )
    experiments.add_argument(
        "--max-spend", type=_non_negative_float, help="USD cap of the experiments run"
    )
    experiments.add_argument("--prefix", default="avengers", help="experiment name prefix")
    for parser in (traces, experiments):
        parser.add_argument("--feedback-key", required=True, help="feedback key scoring answers")
        parser.add_argument(
            "--scale", type=_scale, default=(0.0, 1.0), help="feedback scale LOW..HIGH (0..1)"
        )
        parser.add_argument("-o", "--output", type=Path, required=True, help="JSONL to write")
        parser.add_argument("--langsmith-url", help="LangSmith API URL (default from the env)")


def add_off_policy_options(parser: argparse.ArgumentParser) -> None:
    """``avengers evaluate`` options for logged records."""
    parser.add_argument(
        "--router",
        type=Path,
        help="with logged records: the fitted router to estimate off-policy",
    )
    parser.add_argument(
        "--alpha", type=_alpha, action="append", help="with --router: its alpha (repeat)"
    )
    parser.add_argument(
        "--interval",
        type=_confidence,
        default=0.95,
        help="with --router: coverage of the bootstrap intervals (0.95)",
    )


def _client(args: argparse.Namespace) -> Any:
    import langsmith

    return (
        langsmith.Client(api_url=args.langsmith_url) if args.langsmith_url else langsmith.Client()
    )


def _evaluator(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    if not name:
        msg = f"--evaluator: expected MODULE:NAME, got {spec!r}"
        raise ValueError(msg)
    found = getattr(importlib.import_module(module), name, None)
    if not callable(found):
        msg = f"--evaluator: {spec!r} is not a callable"
        raise ValueError(msg)
    return found


def _fingerprint(value: str | None) -> str | None:
    if value is None or not Path(value).exists():
        return value
    from langchain_avengers.routing.router import ClusterRouter

    return str(ClusterRouter.load(value).data_fingerprint_)


def cmd_harvest(args: argparse.Namespace) -> None:
    """Harvest records from LangSmith and write them as JSONL."""
    from langchain_avengers.learning import harvest_experiments, harvest_traces, run_experiments

    client = _client(args)
    if args.kind == "traces":
        harvest = harvest_traces(
            client,
            project_name=args.project,
            feedback_key=args.feedback_key,
            start_time=args.since,
            end_time=args.until,
            router=_fingerprint(args.router),
            scale=args.scale,
        )
    else:
        named = None
        if args.experiment:
            pairs = [e.partition("=") for e in args.experiment]
            if any(not sep or not model for _, sep, model in pairs):
                msg = f"--experiment: expected NAME=MODEL, got {args.experiment}"
                raise ValueError(msg)
            named = {name: model for name, _, model in pairs}
        if args.evaluator:
            if not args.models:
                msg = "--evaluator: give the pool with --models to run the experiments"
                raise ValueError(msg)
            ran = run_experiments(
                client,
                dataset_name=args.dataset,
                models=args.models,
                evaluators=[_evaluator(e) for e in args.evaluator],
                input_key=args.input_key,
                experiment_prefix=args.prefix,
                max_spend=args.max_spend,
            )
            print(f"avengers: {ran.describe()}", file=sys.stderr)
        harvest = harvest_experiments(
            client,
            named,
            dataset_name=args.dataset,
            feedback_key=args.feedback_key,
            input_key=args.input_key,
            scale=args.scale,
        )
    lines = [json.dumps(r.model_dump(exclude_defaults=True)) for r in harvest.records]
    write_lines_atomically(args.output, (line + "\n" for line in lines))
    print(f"avengers: {harvest.report.describe()}; wrote {args.output}", file=sys.stderr)


def is_logged_file(path: Path) -> bool:
    """Whether a records file's first record is a logged one (has propensities)."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                try:
                    return bool(json.loads(line).get("propensities"))
                except (ValueError, AttributeError):
                    return False
    return False


def cmd_evaluate_logged(args: argparse.Namespace) -> None:
    """Off-policy estimates of ``--router`` on logged records."""
    from langchain_avengers.evaluation.off_policy import estimate_off_policy
    from langchain_avengers.records.data import CalibrationData
    from langchain_avengers.routing.embeddings import embed_texts
    from langchain_avengers.routing.router import ClusterRouter

    if args.router is None:
        msg = (
            f"{args.data}: logged records (with propensities): give the router to estimate "
            "with --router DIR"
        )
        raise ValueError(msg)
    router = ClusterRouter.load(args.router)
    data = CalibrationData.from_path(args.data, catalog=args.catalog, strict=args.strict)
    vectors = embed_texts(router.get_embedder(), data.queries)
    results = [
        estimate_off_policy(router, data, alpha=a, embeddings=vectors, confidence=args.interval)
        for a in (args.alpha or [0.5])
    ]
    for result in results:
        for problem in result.warnings:
            warnings.warn(f"alpha={result.alpha:g}: {problem}", UserWarning, stacklevel=1)
    if args.json:
        from langchain_avengers.cli.output import strict_json

        print(strict_json({"data": str(args.data), "off_policy": [r.to_dict() for r in results]}))
        return
    print("\n\n".join(r.describe() for r in results))
