"""Hand-made evaluation results for the evaluation tests: single-model points, router curve
points, three singles with a known best, and a two-seed ``Evaluation`` worked out by hand.

Test modules import these helpers by name (``tests/`` is on ``pythonpath``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from langchain_avengers.evaluation.evaluate import (
    CurvePoint,
    Evaluation,
    Figures,
    ModelPoint,
    SplitEvaluation,
)


def single(name: str, accuracy: float, cost: float, coverage: float = 1.0) -> ModelPoint:
    return ModelPoint(
        name=name,
        accuracy=accuracy,
        cost=cost,
        total_cost=cost / 1000,
        per_dataset={"d": accuracy},
        coverage=coverage,
    )


def point(alpha: float, accuracy: float, cost: float, usage: dict | None = None) -> CurvePoint:
    return CurvePoint(
        alpha=alpha,
        accuracy=accuracy,
        cost=cost,
        total_cost=cost / 1000,
        per_dataset={"d": accuracy},
        usage=usage or {"m1": 1.0, "m2": 0.0, "m3": 0.0},
    )


SINGLES = [single("m1", 0.5, 1.0), single("m2", 0.8, 10.0), single("m3", 0.7, 100.0)]
BEST = SINGLES[1]


def two_seed_evaluation() -> Evaluation:
    alphas = [0.0, 0.5, 1.0]
    split0 = SplitEvaluation(
        seed=0,
        n_train=7,
        n_test=3,
        singles=[single("m1", 0.5, 1.0), single("m2", 0.8, 10.0), single("m3", 0.7, 100.0)],
        best_single=single("m2", 0.8, 10.0),
        oracle=single("oracle", 0.9, 3.0),
        curve=[
            point(0.0, 0.4, 0.5, {"m1": 1.0, "m2": 0.0, "m3": 0.0}),
            point(0.5, 0.78, 5.0, {"m1": 0.5, "m2": 0.5, "m3": 0.0}),
            point(1.0, 0.85, 20.0, {"m1": 0.0, "m2": 0.5, "m3": 0.5}),
        ],
        figures=Figures(acc_at_best_cost=0.8, cost_to_match=0.8, cost_to_95=0.5, aiq=0.7),
    )
    split1 = SplitEvaluation(
        seed=1,
        n_train=7,
        n_test=3,
        singles=[single("m1", 0.6, 2.0), single("m2", 0.8, 12.0), single("m3", 0.75, 90.0)],
        best_single=single("m2", 0.8, 12.0),
        oracle=single("oracle", 0.95, 5.0),
        curve=[
            point(0.0, 0.5, 1.5, {"m1": 1.0, "m2": 0.0, "m3": 0.0}),
            point(0.5, 0.7, 6.0, {"m1": 0.0, "m2": 1.0, "m3": 0.0}),
            point(1.0, 0.9, 30.0, {"m1": 0.0, "m2": 0.0, "m3": 1.0}),
        ],
        figures=Figures(acc_at_best_cost=0.7, cost_to_match=None, cost_to_95=0.6, aiq=0.6),
    )
    splits = [with_constant_outcomes(split) for split in (split0, split1)]
    return Evaluation(splits=splits, alphas=alphas, router_params={"n_clusters": 3})


def with_constant_outcomes(split: SplitEvaluation) -> SplitEvaluation:
    """Per-query outcomes equal to the curve's means: every resample then has those means."""
    n = split.n_test
    return dataclasses.replace(
        split,
        routed_costs=np.array([[p.cost / 1000] * n for p in split.curve]),
        routed_scores=np.array([[p.accuracy] * n for p in split.curve]),
    )
