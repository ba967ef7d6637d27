"""Honest evaluation of a router against every single model on held-out queries.

Protocol (the paper's): a seeded random split, 70% to fit the router, 30% routed and scored.
Each held-out query is routed only among the models measured on it (a missing score means "not
applicable", never zero). Costs are the USD the chosen model actually billed on that query.

Figures (definitions in ``docs``/README): with the best single model at cost C* and accuracy A*,

- ``acc_at_best_cost``: the router's best accuracy among alpha points costing at most C*;
- ``cost_to_match``: the router's lowest cost reaching A*, as a fraction of C*;
- ``cost_to_95``: the lowest cost reaching 0.95 A*, as a fraction of C*;
- ``aiq``: mean over 200 log-spaced costs between the cheapest and priciest single model of the
  best router accuracy reachable at or below that cost (0 where none).

Accuracy is the mean score over held-out queries; cost is reported in USD per 1,000 queries.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict

import numpy as np

from langchain_avengers._utils.extras import require
from langchain_avengers._utils.progress import progress
from langchain_avengers._utils.warnings import user_stacklevel
from langchain_avengers.evaluation.budgets import DEFAULT_BOOTSTRAP as DEFAULT_BOOTSTRAP
from langchain_avengers.evaluation.budgets import DEFAULT_CONFIDENCE as DEFAULT_CONFIDENCE
from langchain_avengers.evaluation.budgets import BudgetChoice
from langchain_avengers.evaluation.budgets import bootstrap_means as bootstrap_means
from langchain_avengers.evaluation.budgets import choose_budget_point as choose_budget_point
from langchain_avengers.evaluation.results import AIQ_POINTS as AIQ_POINTS
from langchain_avengers.evaluation.results import (
    PER_1K,
    CurvePoint,
    Evaluation,
    Figures,
    ModelPoint,
    SkippedSeed,
    SplitEvaluation,
    compute_figures,
)
from langchain_avengers.records.data import CalibrationData, RecordsLike, as_calibration_data
from langchain_avengers.records.format import RecordsError
from langchain_avengers.routing.embeddings import embed_texts
from langchain_avengers.routing.router import ClusterRouter

__all__ = [
    "DEFAULT_ALPHAS",
    "BudgetChoice",
    "CurvePoint",
    "Evaluation",
    "Figures",
    "ModelPoint",
    "SkippedSeed",
    "SplitEvaluation",
    "compute_figures",
    "evaluate_fitted",
    "evaluate_router",
    "evaluate_split",
    "split_indices",
]

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.round(np.linspace(0, 1, 51), 2))


def split_indices(
    data: CalibrationData, *, seed: int, test_size: float = 0.3, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test row indices, stratified by dataset when every dataset allows it.

    Raises:
        ValueError: ``test_size`` leaves a part empty, or too small to hold every dataset
            of a stratified split (the message gives the sizes that work).
    """
    labels = np.array([d or "" for d in data.datasets])
    _, counts = np.unique(labels, return_counts=True)
    can_stratify = stratify and len(counts) > 1 and counts.min() >= 2
    _check_split_sizes(len(data), test_size, len(counts) if can_stratify else 1)
    train_test_split = require(
        "sklearn.model_selection", "train", "evaluating a router"
    ).train_test_split

    train, test = train_test_split(
        np.arange(len(data)),
        test_size=test_size,
        random_state=seed,
        stratify=labels if can_stratify else None,
    )
    return np.sort(train), np.sort(test)


def _check_split_sizes(n: int, test_size: float, n_strata: int) -> None:
    """Refuse a split scikit-learn cannot make, with the test sizes that would work."""
    if not 0 < test_size < 1:
        msg = f"test_size must be strictly between 0 and 1, got {test_size!r}"
        raise ValueError(msg)
    n_test = math.ceil(test_size * n)  # as scikit-learn rounds it
    n_train = n - n_test
    if min(n_train, n_test) >= n_strata:
        return
    low, high = math.ceil(100 * n_strata / n) / 100, math.floor(100 * (n - n_strata) / n) / 100
    fix = (
        f"choose a test size between {low:g} and {high:g}"
        if low <= high
        else "give more calibration data"
    )
    parts = "each part" if n_strata == 1 else f"each part (one per dataset, {n_strata} datasets)"
    msg = (
        f"test_size={test_size:g} cannot split {n} queries: it leaves {n_train} to fit the "
        f"router and {n_test} to test, and a split needs at least {n_strata} in {parts}; {fix}"
    )
    raise ValueError(msg)


def evaluate_router(
    records: RecordsLike,
    router: ClusterRouter | None = None,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    test_size: float = 0.3,
    stratify: bool = True,
    show_progress: bool = False,
) -> Evaluation:
    """Fit ``router``'s configuration on each seed's training split and score the rest.

    Args:
        records: Calibration data (path, records or :class:`CalibrationData`).
        router: An unfitted router giving the configuration; default ``ClusterRouter()``.
        alphas: Alpha grid of the router curve.
        seeds: One split per seed; figures are averaged over them.
        test_size: Held-out fraction.
        stratify: Stratify splits by dataset.
        show_progress: Progress bar over seeds (only on a terminal).

    A seed whose split cannot be evaluated (a model without any score or cost in the training
    part, or no usable held-out query) is skipped with a warning and listed in
    :attr:`Evaluation.skipped`; the figures are over the other seeds.

    Raises:
        RecordsError: no seed could be evaluated (the message gives the first seed's reason).
        ValueError: bad arguments, or a split that cannot be made.
    """
    data = as_calibration_data(records)
    template = router if router is not None else ClusterRouter()
    if not seeds:
        msg = "seeds: give at least one seed"
        raise ValueError(msg)
    alphas = [float(a) for a in alphas]
    if not alphas or any(not 0 <= a <= 1 for a in alphas):
        msg = f"alphas: expected values in [0, 1], got {alphas}"
        raise ValueError(msg)
    vectors = embed_texts(template.get_embedder(), data.queries, show_progress=show_progress)
    splits: list[SplitEvaluation] = []
    skipped: list[SkippedSeed] = []
    progress_bar = progress(len(seeds), "evaluating seeds", enabled=show_progress)
    with progress_bar as bar, _each_warning_once():  # one fit per seed: say things once
        for seed in seeds:
            try:
                splits.append(
                    _evaluate_split(data, vectors, template, alphas, int(seed), test_size, stratify)
                )
            except RecordsError as exc:  # this split's parts lack data; others may not
                skipped.append(SkippedSeed(seed=int(seed), reason=str(exc)))
            bar.update(1)
    if not splits:
        msg = (
            f"evaluation: none of the {len(seeds)} seeds could be evaluated; "
            f"seed {skipped[0].seed}: {skipped[0].reason}"
        )
        raise RecordsError(msg)
    params = {k: v for k, v in template.get_params(deep=False).items() if k != "embedder"}
    evaluation = Evaluation(splits=splits, alphas=alphas, router_params=params, skipped=skipped)
    if skipped:
        warnings.warn(evaluation.describe_skipped(), UserWarning, stacklevel=user_stacklevel())
    return evaluation


@contextmanager
def _each_warning_once() -> Iterator[None]:
    """Re-issue each distinct warning raised inside the block once, at its end."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for w in caught:
        if (str(w.message), w.category) not in seen:
            seen.add((str(w.message), w.category))
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _evaluate_split(
    data: CalibrationData,
    vectors: np.ndarray,
    template: ClusterRouter,
    alphas: list[float],
    seed: int,
    test_size: float,
    stratify: bool,
) -> SplitEvaluation:
    train, test = split_indices(data, seed=seed, test_size=test_size, stratify=stratify)
    return _evaluate_rows(data, vectors, template, alphas, seed, train, test)


def evaluate_split(
    records: RecordsLike,
    router: ClusterRouter,
    train: Sequence[int] | np.ndarray,
    test: Sequence[int] | np.ndarray,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    seed: int = 0,
) -> SplitEvaluation:
    """Fit ``router``'s configuration on the rows ``train`` and score the rows ``test``.

    For splits made elsewhere (e.g. a study of calibration-set size that fits on subsamples
    and always scores the same validation rows); :func:`evaluate_router` makes seeded splits.

    Args:
        records: Calibration data (path, records or :class:`CalibrationData`).
        router: An unfitted router giving the configuration.
        train: Row indices to fit on.
        test: Row indices to route and score.
        alphas: Alpha grid of the router curve.
        seed: Recorded in the result as the split's seed.
    """
    data = as_calibration_data(records)
    vectors = embed_texts(router.get_embedder(), data.queries)
    alphas = [float(a) for a in alphas]
    rows = (np.asarray(train, dtype=int), np.asarray(test, dtype=int))
    return _evaluate_rows(data, vectors, router, alphas, seed, *rows)


def _evaluate_rows(
    data: CalibrationData,
    vectors: np.ndarray,
    template: ClusterRouter,
    alphas: list[float],
    seed: int,
    train: np.ndarray,
    test: np.ndarray,
) -> SplitEvaluation:
    fitted = type(template)(**template.get_params(deep=False))
    fitted.fit(_trainable(data.subset(train)), embeddings=vectors[train])
    return _score_fitted(fitted, data.subset(test), vectors[test], alphas, seed, len(train))


def evaluate_fitted(
    router: ClusterRouter,
    records: RecordsLike,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
) -> SplitEvaluation:
    """Score an already fitted router on held-out records, against every single model.

    For routers fitted in other ways than :func:`evaluate_split` fits them (say on calibration
    and logged records together, ``benchmarks/off_policy.py``).

    Args:
        router: The fitted router.
        records: Held-out calibration records (full ones: every model's score is needed to
            score any choice).
        alphas: Alpha grid of the router curve.
        embeddings: Optional precomputed embeddings of the records' queries.
        seed: Recorded in the result as the split's seed.
    """
    data = _aligned(as_calibration_data(records), router.models_)
    vectors = embed_texts(router.get_embedder(), data.queries) if embeddings is None else embeddings
    alphas = [float(a) for a in alphas]
    return _score_fitted(router, data, np.asarray(vectors), alphas, seed, router.n_samples_fit_)


def _aligned(data: CalibrationData, models: Sequence[str]) -> CalibrationData:
    """``data`` with its columns in the router's model order."""
    missing = sorted(set(models) - set(data.models))
    if missing:
        msg = f"held-out records: model(s) {missing} of the router have no column in the records"
        raise RecordsError(msg)
    columns = [data.models.index(m) for m in models]
    return CalibrationData(
        queries=data.queries,
        models=list(models),
        scores=data.scores[:, columns],
        costs=data.costs[:, columns],
        datasets=data.datasets,
    )


def _score_fitted(
    fitted: ClusterRouter,
    held_out: CalibrationData,
    test_vectors: np.ndarray,
    alphas: list[float],
    seed: int,
    n_train: int,
) -> SplitEvaluation:
    measured = ~np.isnan(held_out.scores) & ~np.isnan(held_out.costs)
    keep = measured.any(axis=1)
    if not keep.any():
        msg = "no held-out query has a model with both a score and a cost"
        raise RecordsError(msg)
    held_out = held_out.subset(np.flatnonzero(keep))
    measured = measured[keep]
    test_vectors = test_vectors[keep]
    picks = [_route_measured(fitted, test_vectors, measured, alpha) for alpha in alphas]
    curve = [_routed_point(alpha, held_out, p) for alpha, p in zip(alphas, picks, strict=True)]
    rows = np.arange(len(held_out))
    singles = [_single_point(held_out, j) for j in range(len(held_out.models))]
    best = max(singles, key=lambda p: (p.coverage >= 1.0, p.accuracy, -p.cost))
    return SplitEvaluation(
        seed=seed,
        n_train=n_train,
        n_test=len(held_out),
        singles=singles,
        best_single=best,
        oracle=_oracle_point(held_out),
        curve=curve,
        figures=compute_figures(singles, curve, best),
        routed_costs=np.array([held_out.costs[rows, p] for p in picks]),
        routed_scores=np.array([held_out.scores[rows, p] for p in picks]),
    )


def _trainable(train: CalibrationData) -> CalibrationData:
    """``train``, if every model has a score and a cost in it (a router needs both)."""
    for what, values in (("score", train.scores), ("cost", train.costs)):
        seen = (~np.isnan(values)).any(axis=0)
        missing = [m for m, ok in zip(train.models, seen, strict=True) if not ok]
        if missing:
            msg = (
                f"model(s) {missing} have no {what} in the {len(train)} training queries of "
                "this split"
            )
            raise RecordsError(msg)
    return train


def _route_measured(
    router: ClusterRouter, vectors: np.ndarray, measured: np.ndarray, alpha: float
) -> np.ndarray:
    """Column (of the data) each query is routed to, among the models measured on it.

    Queries are grouped by which models were measured, and each group is routed with
    ``allowed_models`` = those models, so normalisation happens among them exactly as the
    deployed router does when a capability rules models out.
    """
    models = router.models_
    picked = np.empty(len(vectors), dtype=int)
    patterns, group = np.unique(measured, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        rows = np.flatnonzero(group.ravel() == g)
        allowed = [m for m, ok in zip(models, pattern, strict=True) if ok]
        chosen = router.route_batch(vectors[rows], alpha, allowed_models=allowed)
        picked[rows] = [models.index(m) for m in chosen]
    return picked


def _routed_point(alpha: float, held_out: CalibrationData, picked: np.ndarray) -> CurvePoint:
    rows = np.arange(len(held_out))
    point = _point_from_rows(
        f"α={alpha:g}", held_out, held_out.scores[rows, picked], held_out.costs[rows, picked]
    )
    shares = np.bincount(picked, minlength=len(held_out.models)) / len(held_out)
    return CurvePoint(
        alpha=alpha,
        accuracy=point.accuracy,
        cost=point.cost,
        total_cost=point.total_cost,
        per_dataset=point.per_dataset,
        usage={m: float(s) for m, s in zip(held_out.models, shares, strict=True)},
    )


def _single_point(held_out: CalibrationData, column: int) -> ModelPoint:
    scores, costs = held_out.scores[:, column], held_out.costs[:, column]
    answered = ~np.isnan(scores) & ~np.isnan(costs)
    point = _point_from_rows(
        held_out.models[column],
        held_out.subset(np.flatnonzero(answered)),
        scores[answered],
        costs[answered],
    )
    return ModelPoint(**{**asdict(point), "coverage": float(answered.mean())})


def _oracle_point(held_out: CalibrationData) -> ModelPoint:
    """Per query, the cheapest model among those with the top score."""
    scores = np.where(np.isnan(held_out.costs), np.nan, held_out.scores)
    top = np.nanmax(scores, axis=1, keepdims=True)
    is_top = scores >= top - 1e-12
    cheapest = np.where(is_top, held_out.costs, np.inf).argmin(axis=1)
    rows = np.arange(len(held_out))
    return _point_from_rows(
        "oracle", held_out, held_out.scores[rows, cheapest], held_out.costs[rows, cheapest]
    )


def _point_from_rows(
    name: str, data: CalibrationData, scores: np.ndarray, costs: np.ndarray
) -> ModelPoint:
    datasets = np.array([d or "all" for d in data.datasets])
    per_dataset = {str(d): float(scores[datasets == d].mean()) for d in np.unique(datasets)}
    return ModelPoint(
        name=name,
        accuracy=float(scores.mean()) if len(scores) else float("nan"),
        cost=float(costs.mean()) * PER_1K if len(costs) else float("nan"),
        total_cost=float(costs.sum()) if len(costs) else float("nan"),
        per_dataset=per_dataset,
    )
