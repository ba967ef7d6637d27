"""Offline evaluation: a router against every single model of its pool, plots, budget bounds.

Needs the ``train`` extra (``pip install "langchain-avengers[train]"``); plots need ``plot``.
"""

from langchain_avengers.evaluation.budgets import BudgetChoice
from langchain_avengers.evaluation.evaluate import (
    DEFAULT_ALPHAS,
    CurvePoint,
    Evaluation,
    Figures,
    ModelPoint,
    SkippedSeed,
    SplitEvaluation,
    compute_figures,
    evaluate_fitted,
    evaluate_router,
    evaluate_split,
    split_indices,
)
from langchain_avengers.evaluation.off_policy import (
    Interval,
    OffPolicyEvaluation,
    estimate_off_policy,
)

__all__ = [
    "DEFAULT_ALPHAS",
    "BudgetChoice",
    "CurvePoint",
    "Evaluation",
    "Figures",
    "Interval",
    "ModelPoint",
    "OffPolicyEvaluation",
    "SkippedSeed",
    "SplitEvaluation",
    "compute_figures",
    "estimate_off_policy",
    "evaluate_fitted",
    "evaluate_router",
    "evaluate_split",
    "split_indices",
]
