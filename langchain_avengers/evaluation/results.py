"""What an evaluation measured: the points, figures and seed averages of its splits.

:func:`~langchain_avengers.evaluation.evaluate_router` makes them; the figures are defined in
:mod:`langchain_avengers.evaluation.evaluate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from langchain_avengers._utils.money import format_usd
from langchain_avengers.evaluation.budgets import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_CONFIDENCE,
    BudgetChoice,
    bootstrap_means,
    choose_budget_point,
)

AIQ_POINTS = 200
PER_1K = 1000.0


@dataclass(frozen=True)
class ModelPoint:
    """Accuracy and cost of one way of answering the held-out queries."""

    name: str
    accuracy: float
    """Mean score over the queries it answered."""
    cost: float
    """USD per 1,000 queries."""
    total_cost: float
    """USD over the whole held-out split."""
    per_dataset: dict[str, float]
    coverage: float = 1.0
    """Fraction of held-out queries with a measured score (single models only)."""


@dataclass(frozen=True)
class CurvePoint:
    """The router at one alpha."""

    alpha: float
    accuracy: float
    cost: float
    total_cost: float
    per_dataset: dict[str, float]
    usage: dict[str, float]
    """Share of held-out queries sent to each model."""


@dataclass(frozen=True)
class Figures:
    """The four headline figures; ``None`` where the router never reaches the target."""

    acc_at_best_cost: float | None
    cost_to_match: float | None
    cost_to_95: float | None
    aiq: float


@dataclass(frozen=True)
class SplitEvaluation:
    """Everything measured on one seeded split."""

    seed: int
    n_train: int
    n_test: int
    singles: list[ModelPoint]
    best_single: ModelPoint
    oracle: ModelPoint
    curve: list[CurvePoint]
    figures: Figures
    routed_costs: np.ndarray | None = field(default=None, repr=False, compare=False)
    """``(n_alphas, n_test)``: USD the routed answer cost, per alpha and held-out query."""
    routed_scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    """``(n_alphas, n_test)``: the routed answer's score, per alpha and held-out query."""


@dataclass(frozen=True)
class SkippedSeed:
    """A seed whose split could not be evaluated, and why; figures leave it out.

    Say, a model measured on a few queries, all of which fell in the held-out part.
    """

    seed: int
    reason: str


@dataclass
class Evaluation:
    """Results over several seeds, with seed-averaged figures and curve."""

    splits: list[SplitEvaluation]
    alphas: list[float]
    router_params: dict[str, Any] = field(default_factory=dict)
    skipped: list[SkippedSeed] = field(default_factory=list)
    """Seeds left out of every figure, with the reason."""

    @property
    def figures(self) -> Figures:
        """Figures averaged over seeds; ``None`` if any seed never reaches the target."""
        per_seed = [s.figures for s in self.splits]
        return Figures(
            acc_at_best_cost=_mean_or_none([f.acc_at_best_cost for f in per_seed]),
            cost_to_match=_mean_or_none([f.cost_to_match for f in per_seed]),
            cost_to_95=_mean_or_none([f.cost_to_95 for f in per_seed]),
            aiq=float(np.mean([f.aiq for f in per_seed])),
        )

    def reached(self) -> dict[str, dict[str, Any]]:
        """Per figure: in how many seeds the target was reached, and the mean where it was.

        ``figures`` reports ``None`` unless every seed reaches a target; this keeps what the
        other seeds say instead of hiding it.
        """
        out = {}
        for name in ("acc_at_best_cost", "cost_to_match", "cost_to_95"):
            values = [getattr(s.figures, name) for s in self.splits]
            hits = [v for v in values if v is not None]
            out[name] = {
                "seeds": len(hits),
                "of": len(values),
                "mean_where_reached": float(np.mean(hits)) if hits else None,
            }
        return out

    def curve_mean(self) -> list[dict[str, Any]]:
        """Seed-averaged router curve: mean and std of accuracy and cost, mean usage per alpha."""
        rows = []
        for i, alpha in enumerate(self.alphas):
            points = [s.curve[i] for s in self.splits]
            acc = np.array([p.accuracy for p in points])
            cost = np.array([p.cost for p in points])
            models = points[0].usage.keys()
            rows.append(
                {
                    "alpha": alpha,
                    "accuracy": float(acc.mean()),
                    "accuracy_std": float(acc.std()),
                    "cost": float(cost.mean()),
                    "cost_std": float(cost.std()),
                    "usage": {m: float(np.mean([p.usage[m] for p in points])) for m in models},
                }
            )
        return rows

    def singles_mean(self) -> list[dict[str, Any]]:
        """Seed-averaged accuracy and cost of every single model."""
        names = [p.name for p in self.splits[0].singles]
        return [
            _mean_point(name, [next(p for p in s.singles if p.name == name) for s in self.splits])
            for name in names
        ]

    def best_single_mean(self) -> dict[str, Any]:
        """The best single model (by seed-averaged accuracy) with its averaged figures."""
        return max(self.singles_mean(), key=lambda p: (p["coverage"] >= 1.0, p["accuracy"]))

    def oracle_mean(self) -> dict[str, Any]:
        """Seed-averaged oracle (cheapest top-scoring model per query)."""
        return _mean_point("oracle", [s.oracle for s in self.splits])

    def oracle_gap(self) -> dict[str, float]:
        """How far the router and the best single model stay from the per-query oracle.

        The oracle (cheapest top-scoring model per query) is the ceiling of any router; the
        router's best is each seed's most accurate alpha point, averaged over seeds (the rule of
        the figures, so it is never below acc@best-cost).
        """
        oracle = self.oracle_mean()["accuracy"]
        router = float(np.mean([max(p.accuracy for p in s.curve) for s in self.splits]))
        best = self.best_single_mean()["accuracy"]
        return {
            "oracle_accuracy": oracle,
            "router_best_accuracy": router,
            "best_single_accuracy": best,
            "oracle_minus_router": oracle - router,
            "oracle_minus_best_single": oracle - best,
        }

    def per_benchmark(self) -> dict[str, Any]:
        """Per benchmark family, the router against the best single model at its cost.

        The router point is the most accurate alpha whose seed-mean cost is at most the best
        single model's (the acc@best-cost point of the mean curve; the cheapest alpha if none
        is). Accuracies are seed means; ``delta`` = router minus best single model.
        """
        best = self.best_single_mean()
        curve = self.curve_mean()
        within = [i for i, p in enumerate(curve) if p["cost"] <= best["cost"]]
        if within:
            i = max(within, key=lambda j: (curve[j]["accuracy"], -curve[j]["cost"]))
        else:
            i = min(range(len(curve)), key=lambda j: curve[j]["cost"])
        router = [_grouped_accuracy(s.curve[i].per_dataset) for s in self.splits]
        single = [
            _grouped_accuracy(next(p for p in s.singles if p.name == best["model"]).per_dataset)
            for s in self.splits
        ]
        oracle = [_grouped_accuracy(s.oracle.per_dataset) for s in self.splits]
        rows = []
        for name in sorted({name for g in router for name in g}):
            r, b, o = (
                # over the seeds whose held-out split has this benchmark
                float(np.nanmean([g.get(name, np.nan) for g in x]))
                for x in (router, single, oracle)
            )
            rows.append(
                {"benchmark": name, "router": r, "best_single": b, "oracle": o, "delta": r - b}
            )
        return {"alpha": self.alphas[i], "best_single": best["model"], "benchmarks": rows}

    def choose_alpha(
        self,
        *,
        target_cost: float | None = None,
        min_accuracy: float | None = None,
        confidence: float = DEFAULT_CONFIDENCE,
        n_resamples: int = DEFAULT_BOOTSTRAP,
        random_state: int | None = 0,
    ) -> BudgetChoice:
        """Pick alpha for a budget, with a margin for how fresh queries vary.

        With ``target_cost``: the most accurate alpha (by seed-mean accuracy) whose cost bound
        is at most the target. With ``min_accuracy``: the cheapest alpha (by seed-mean cost)
        whose accuracy bound is at least the minimum.

        What the confidence means: every seed's held-out queries are resampled with
        replacement ``n_resamples`` times, and the bound is the ``confidence`` quantile (cost)
        or ``1 - confidence`` quantile (accuracy) of the resamples' means, pooled over seeds.
        So it covers two spreads: between routers fitted on different calibration subsets
        (the seeds) and between batches of queries. Read it as: a batch of as many fresh
        queries as a held-out split (``n_test``), drawn like the calibration queries, costs
        at most ``cost_bound`` per 1,000 with about this probability. Larger batches vary
        less, smaller ones more, and queries unlike the calibration data are not covered, nor
        is the refit of the deployed router on all the data (it moves alpha's price a little).
        On the shared data, choosing on one half and routing the other exceeded the target in
        3 of 60 trials at 90%, against 18 of 60 for the seed-mean cost
        (``benchmarks/budget_targeting.py``).

        Args:
            target_cost: Most USD per 1,000 queries to spend.
            min_accuracy: Least accuracy (fraction) to reach.
            confidence: Probability the bound holds, in [0.5, 1).
            n_resamples: Bootstrap resamples per seed.
            random_state: Seed of the resampling.

        Raises:
            ValueError: neither or both targets given, a confidence outside [0.5, 1), an
                evaluation without per-query outcomes, or no alpha meets the target at this
                confidence.
        """
        if (target_cost is None) == (min_accuracy is None):
            msg = "choose_alpha: give exactly one of target_cost or min_accuracy"
            raise ValueError(msg)
        curve = self.curve_bounds(
            confidence=confidence, n_resamples=n_resamples, random_state=random_state
        )
        best = choose_budget_point(
            curve, target_cost=target_cost, min_accuracy=min_accuracy, confidence=confidence
        )
        return BudgetChoice(
            alpha=best["alpha"],
            accuracy=best["accuracy"],
            accuracy_std=best["accuracy_std"],
            cost=best["cost"],
            cost_std=best["cost_std"],
            n_seeds=len(self.splits),
            confidence=confidence,
            cost_bound=best["cost_bound"],
            accuracy_bound=best["accuracy_bound"],
            n_test=round(float(np.mean([s.n_test for s in self.splits]))),
            n_resamples=n_resamples,
        )

    def curve_bounds(
        self,
        *,
        confidence: float = DEFAULT_CONFIDENCE,
        n_resamples: int = DEFAULT_BOOTSTRAP,
        random_state: int | None = 0,
    ) -> list[dict[str, Any]]:
        """:meth:`curve_mean` plus ``cost_bound`` and ``accuracy_bound`` per alpha.

        See :meth:`choose_alpha` for what the bounds mean.

        Raises:
            ValueError: a confidence outside [0.5, 1), or a split without per-query outcomes
                (``routed_costs``/``routed_scores``, which :func:`evaluate_router` records).
        """
        if not 0.5 <= confidence < 1:
            msg = f"confidence must be in [0.5, 1), got {confidence!r}"
            raise ValueError(msg)
        n_alphas = len(self.alphas)
        resampled = bootstrap_means(
            [_outcomes(s) for s in self.splits], n_resamples=n_resamples, random_state=random_state
        )
        cost_bounds = np.quantile(resampled[:n_alphas], confidence, axis=1) * PER_1K
        accuracy_bounds = np.quantile(resampled[n_alphas:], 1 - confidence, axis=1)
        return [
            {**row, "cost_bound": float(cost), "accuracy_bound": float(accuracy)}
            for row, cost, accuracy in zip(
                self.curve_mean(), cost_bounds, accuracy_bounds, strict=True
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON report printed by ``avengers evaluate --json``."""
        best = self.best_single_mean()
        oracle = self.oracle_mean()
        return {
            "figures": asdict(self.figures),
            "figures_per_seed": [{"seed": s.seed, **asdict(s.figures)} for s in self.splits],
            "figures_reached": self.reached(),
            "best_single": {k: best[k] for k in ("model", "accuracy", "cost")},
            "oracle": {k: oracle[k] for k in ("accuracy", "cost")},
            "oracle_gap": self.oracle_gap(),
            "per_benchmark": self.per_benchmark(),
            "singles": [
                {k: p[k] for k in ("model", "accuracy", "cost", "coverage")}
                for p in self.singles_mean()
            ],
            "curve": self.curve_mean(),
            "units": {
                "accuracy": "mean score over held-out queries, in [0, 1]",
                "cost": "USD per 1,000 held-out queries",
                "cost figures": "fraction of the best single model's cost",
            },
            "seeds": [s.seed for s in self.splits],
            "skipped_seeds": [asdict(s) for s in self.skipped],
            "n_test": [s.n_test for s in self.splits],
            "n_train": [s.n_train for s in self.splits],
            "router": self.router_params,
        }

    def table(self, alphas: Sequence[float] = (0.0, 0.3, 0.5, 0.7, 1.0)) -> str:
        """A Markdown table like the paper's Table 3, seed-averaged.

        Per-benchmark accuracy in % (datasets grouped by the prefix before "/"), their
        unweighted average, the accuracy over all held-out queries, and the total USD spent on
        the held-out split (the paper's unit; figures and plots use USD per 1,000 queries), to
        four significant digits so that a pool of cheap models does not read ``0.000``.
        """
        groups = sorted({_group(d) for d in self.splits[0].oracle.per_dataset})
        rows: list[tuple[str, list[ModelPoint]]] = [
            (p.name, [next(q for q in s.singles if q.name == p.name) for s in self.splits])
            for p in self.splits[0].singles
        ]
        rows.append(("oracle", [s.oracle for s in self.splits]))
        for alpha in alphas:
            i = int(np.argmin(np.abs(np.asarray(self.alphas) - alpha)))
            label = f"router α={self.alphas[i]:g}"
            rows.append((label, [_as_model_point(label, s.curve[i]) for s in self.splits]))
        header = ["", *groups, "avg", "all", "split cost"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, points in rows:
            grouped = [_grouped_accuracy(p.per_dataset) for p in points]
            cells = [100 * np.mean([g.get(name, np.nan) for g in grouped]) for name in groups]
            known = [c for c in cells if not math.isnan(c)]
            avg = float(np.mean(known)) if known else float("nan")
            acc = 100 * np.mean([p.accuracy for p in points])
            cost = float(np.mean([p.total_cost for p in points]))
            values = [f"{c:.1f}" for c in cells] + [f"{avg:.1f}", f"{acc:.1f}", format_usd(cost)]
            lines.append("| " + " | ".join([label, *values]) + " |")
        if self.skipped:
            lines.append(f"\n{self.describe_skipped()}")
        return "\n".join(lines)

    def describe_skipped(self) -> str:
        """One line naming the skipped seeds and why ("" when none was skipped)."""
        if not self.skipped:
            return ""
        by_reason: dict[str, list[str]] = {}
        for s in self.skipped:
            by_reason.setdefault(s.reason, []).append(str(s.seed))
        reasons = "; ".join(
            f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}: {reason}"
            for reason, seeds in by_reason.items()
        )
        return (
            f"{len(self.skipped)} of {len(self.skipped) + len(self.splits)} seeds skipped, "
            f"figures are over the other {len(self.splits)} ({reasons})"
        )


def compute_figures(
    singles: Sequence[ModelPoint], curve: Sequence[CurvePoint], best: ModelPoint
) -> Figures:
    """The four figures of one split (see the module docstring)."""
    costs = np.array([p.cost for p in curve])
    accs = np.array([p.accuracy for p in curve])
    under = costs <= best.cost
    match = accs >= best.accuracy
    near = accs >= 0.95 * best.accuracy
    single_costs = [p.cost for p in singles if p.cost > 0]
    grid = np.geomspace(min(single_costs), max(single_costs), AIQ_POINTS)
    reachable = costs[None, :] <= grid[:, None]
    best_at = np.where(reachable, accs[None, :], 0.0).max(axis=1)
    return Figures(
        acc_at_best_cost=float(accs[under].max()) if under.any() else None,
        cost_to_match=float(costs[match].min() / best.cost) if match.any() else None,
        cost_to_95=float(costs[near].min() / best.cost) if near.any() else None,
        aiq=float(best_at.mean()),
    )


def _outcomes(split: SplitEvaluation) -> np.ndarray:
    """Per-query routed costs stacked over scores: ``(2 * n_alphas, n_test)``."""
    if split.routed_costs is None or split.routed_scores is None:
        msg = (
            f"seed {split.seed} has no per-query outcomes (routed_costs, routed_scores) to "
            "bound costs with; make the evaluation with evaluate_router or evaluate_split"
        )
        raise ValueError(msg)
    return np.vstack([split.routed_costs, split.routed_scores])


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return float(np.mean([v for v in values if v is not None]))


def _mean_point(name: str, points: Sequence[ModelPoint]) -> dict[str, Any]:
    return {
        "model": name,
        "accuracy": float(np.mean([p.accuracy for p in points])),
        "cost": float(np.mean([p.cost for p in points])),
        "total_cost": float(np.mean([p.total_cost for p in points])),
        "coverage": float(np.mean([p.coverage for p in points])),
    }


def _as_model_point(name: str, point: CurvePoint) -> ModelPoint:
    return ModelPoint(
        name=name,
        accuracy=point.accuracy,
        cost=point.cost,
        total_cost=point.total_cost,
        per_dataset=point.per_dataset,
    )


def _group(dataset: str) -> str:
    return dataset.split("/", 1)[0]


def _grouped_accuracy(per_dataset: dict[str, float]) -> dict[str, float]:
    """Average sub-task accuracies (e.g. ``bbh/*``) into their family."""
    groups: dict[str, list[float]] = {}
    for name, value in per_dataset.items():
        groups.setdefault(_group(name), []).append(value)
    return {name: float(np.mean(values)) for name, values in groups.items()}
