"""Calibration: run a pool of models on labelled queries and record score and cost per pair.

The output is the calibration-record JSONL that ``avengers fit`` and ``evaluate`` read::

    from langchain_avengers.calibration import calibrate, estimate_calibration

    pool = ["openai/gpt-5", "qwen/qwen3-235b-a22b-2507"]
    print(estimate_calibration("queries.jsonl", pool).table())
    run = calibrate("queries.jsonl", pool, "records.jsonl", max_spend=2.0)
    print(run.describe())

Pieces: :mod:`.queries` (the query-file format), :mod:`.graders` (scoring) and
:mod:`.sandbox` (running answer code), :mod:`.store` (journal, records, merge),
:mod:`.plan` (pairs, shards, cost bounds and estimates), :mod:`.runner` (the async run),
:mod:`.regrade` (re-scoring saved answers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from langchain_avengers.calibration.client import ApiSettings
from langchain_avengers.calibration.graders import (
    extract_choice,
    extract_code,
    extract_number,
    grade,
    grade_choice,
    grade_exact,
    grade_numeric,
    grade_python,
    grade_regex,
    normalise_text,
    parse_judge_score,
)
from langchain_avengers.calibration.plan import (
    DEFAULT_MAX_TOKENS,
    CalibrationPlan,
    Shard,
    SpendEstimate,
)
from langchain_avengers.calibration.queries import Query, QueryFileError, load_queries
from langchain_avengers.calibration.regrade import RegradeRun, run_regrade
from langchain_avengers.calibration.runner import Log, run_calibration
from langchain_avengers.calibration.store import (
    MergeResult,
    StoreError,
    journal_index,
    journal_path,
    merge_records,
)
from langchain_avengers.calibration.summary import CalibrationRun
from langchain_avengers.catalog.base import Catalog, load_catalog

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "ApiSettings",
    "CalibrationPlan",
    "CalibrationRun",
    "MergeResult",
    "Query",
    "QueryFileError",
    "RegradeRun",
    "Shard",
    "SpendEstimate",
    "StoreError",
    "acalibrate",
    "calibrate",
    "estimate_calibration",
    "extract_choice",
    "extract_code",
    "extract_number",
    "grade",
    "grade_choice",
    "grade_exact",
    "grade_numeric",
    "grade_python",
    "grade_regex",
    "load_queries",
    "merge_records",
    "normalise_text",
    "parse_judge_score",
    "plan_calibration",
    "regrade",
]


def plan_calibration(
    queries: str | Path | Sequence[Query],
    models: Sequence[str],
    output: str | Path,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    judge_model: str | None = None,
    shard: Shard | str | None = None,
    catalog: Catalog | None = None,
    needs_judges: bool = True,
) -> CalibrationPlan:
    """Validate a run's inputs: the queries (a file or loaded), models, judge and shard.

    ``needs_judges=False`` lets judge-graded queries go without a judge model (a regrade that
    keeps their scores calls no judge).

    Raises:
        QueryFileError: a bad query file, or a judge-graded query without a judge model.
        ValueError: no models, a model given twice, a bad shard or ``max_tokens``.
    """
    if max_tokens < 1:
        msg = f"max_tokens: expected a positive integer, got {max_tokens}"
        raise ValueError(msg)
    loaded = load_queries(queries) if isinstance(queries, (str, Path)) else list(queries)
    return CalibrationPlan(
        queries=loaded,
        models=list(models),
        output=Path(output),
        catalog=catalog if catalog is not None else load_catalog(),
        max_tokens=max_tokens,
        judge_model=judge_model,
        shard=Shard.parse(shard) if isinstance(shard, str) else shard,
        needs_judges=needs_judges,
    )


def estimate_calibration(
    queries: str | Path | Sequence[Query],
    models: Sequence[str],
    output: str | Path | None = None,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    judge_model: str | None = None,
    shard: Shard | str | None = None,
    assume_output_tokens: int | None = None,
    catalog: Catalog | None = None,
) -> SpendEstimate:
    """What a run would cost, without calling anyone (``avengers calibrate --dry-run``).

    Pairs already in ``output``'s journal are not counted.
    """
    target = Path(output) if output is not None else Path("-")
    plan = plan_calibration(
        queries,
        models,
        target,
        max_tokens=max_tokens,
        judge_model=judge_model,
        shard=shard,
        catalog=catalog,
    )
    journal = journal_index(journal_path(target)) if output is not None else {}
    return plan.estimate(journal, assume_output_tokens)


async def acalibrate(
    queries: str | Path | Sequence[Query],
    models: Sequence[str],
    output: str | Path,
    *,
    api: ApiSettings | None = None,
    concurrency: int = 8,
    per_model_concurrency: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    judge_model: str | None = None,
    max_spend: float | None = None,
    save_answers: bool = False,
    shard: Shard | str | None = None,
    show_progress: bool = True,
    catalog: Catalog | None = None,
    log: Log | None = None,
) -> CalibrationRun:
    """Async :func:`calibrate` (for code already inside an event loop)."""
    plan = plan_calibration(
        queries,
        models,
        output,
        max_tokens=max_tokens,
        judge_model=judge_model,
        shard=shard,
        catalog=catalog,
    )
    return await run_calibration(
        plan,
        api if api is not None else ApiSettings.from_env(),
        concurrency=concurrency,
        per_model_concurrency=per_model_concurrency,
        max_spend=max_spend,
        save_answers=save_answers,
        show_progress=show_progress,
        log=log,
    )


def calibrate(
    queries: str | Path | Sequence[Query],
    models: Sequence[str],
    output: str | Path,
    *,
    api: ApiSettings | None = None,
    concurrency: int = 8,
    per_model_concurrency: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    judge_model: str | None = None,
    max_spend: float | None = None,
    save_answers: bool = False,
    shard: Shard | str | None = None,
    show_progress: bool = True,
    catalog: Catalog | None = None,
    log: Log | None = None,
) -> CalibrationRun:
    """Ask every model every query, grade the answers, and write calibration records.

    Finished pairs are journalled beside ``output`` as they arrive; a re-run with the same
    ``output`` skips them and asks only what is missing (failed, new queries or models).

    Args:
        queries: A query file (see :mod:`.queries`) or loaded queries.
        models: OpenRouter model ids to calibrate.
        output: Records file to write (atomically) at the end; its journal sits beside it.
        api: Endpoint, key, timeout and retries; default ``$OPENROUTER_API_KEY`` and
            ``$OPENROUTER_BASE_URL`` (or OpenRouter).
        concurrency: Calls in flight at once.
        per_model_concurrency: Calls in flight per model (default: ``concurrency``).
        max_tokens: Output limit per call (reasoning included); bounds the worst case.
        judge_model: Judge for judge-graded queries that name none.
        max_spend: USD cap for this run; launching stops before the worst case of calls in
            flight could cross it.
        save_answers: Keep raw answers in the journal (for :func:`regrade`).
        shard: Run only shard ``"K/N"`` of the pairs (0 <= K < N).
        show_progress: Draw a progress bar (only on a terminal).
        catalog: Model profiles and prices; default :func:`load_catalog`.
        log: Where run notes go (default: the ``langchain_avengers.calibration`` logger).

    Returns:
        The run's summary (``.describe()``); ``.stop_reason`` says why it stopped early.
    """
    return asyncio.run(
        acalibrate(
            queries,
            models,
            output,
            api=api,
            concurrency=concurrency,
            per_model_concurrency=per_model_concurrency,
            max_tokens=max_tokens,
            judge_model=judge_model,
            max_spend=max_spend,
            save_answers=save_answers,
            shard=shard,
            show_progress=show_progress,
            catalog=catalog,
            log=log,
        )
    )


def regrade(
    queries: str | Path | Sequence[Query],
    output: str | Path,
    *,
    models: Sequence[str] | None = None,
    judge_model: str | None = None,
    allow_judge_calls: bool = False,
    api: ApiSettings | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    catalog: Catalog | None = None,
) -> RegradeRun:
    """Re-score the answers saved in ``output``'s journal with the current graders.

    Args:
        queries: The query file, as it reads now.
        output: Records file of an earlier :func:`calibrate` with ``save_answers``.
        models: Models to keep in the output (default: every model in the journal).
        judge_model: Judge for judge-graded queries that name none.
        allow_judge_calls: Re-judge judge-graded answers (calls the judge model).
        api: Endpoint and key for judge calls (default from the environment when needed).
        max_tokens: Output limit of judge calls.
        catalog: Model profiles and prices.
    """
    path = Path(output)
    if models is None:
        models = list(dict.fromkeys(model for _, model in journal_index(journal_path(path))))
    if not models:
        msg = f"{journal_path(path)}: no journalled pairs to regrade"
        raise ValueError(msg)
    plan = plan_calibration(
        queries,
        models,
        path,
        max_tokens=max_tokens,
        judge_model=judge_model,
        catalog=catalog,
        needs_judges=allow_judge_calls,
    )
    if allow_judge_calls and api is None and plan.judge_models():
        api = ApiSettings.from_env()
    return asyncio.run(run_regrade(plan, api=api, allow_judge_calls=allow_judge_calls))
