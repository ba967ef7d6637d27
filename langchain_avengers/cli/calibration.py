"""``avengers calibrate``, ``regrade`` and ``merge``: make calibration records with a pool."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langchain_avengers.cli.args import (
    EXIT_BAD_INPUT,
    _model_list,
    _non_negative_int,
    _positive_float,
    _positive_int,
)

EXIT_INCOMPLETE = 1
EXIT_INTERRUPTED = 130


def _add_api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help="OpenAI-compatible API (default $OPENROUTER_BASE_URL)")
    parser.add_argument(
        "--api-key-env", default="OPENROUTER_API_KEY", help="variable holding the API key"
    )
    parser.add_argument("--judge-model", help="judge for judge-graded queries that name none")
    parser.add_argument(
        "--max-tokens", type=_positive_int, default=4096, help="output limit per call (4096)"
    )


def add_calibration_parsers(sub: argparse._SubParsersAction) -> None:
    """``avengers calibrate``, ``regrade`` and ``merge``."""
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
