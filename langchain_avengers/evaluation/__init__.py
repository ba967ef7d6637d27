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
    evaluate_router,
    evaluate_split,
    split_indices,
)

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
    "evaluate_router",
    "evaluate_split",
    "split_indices",
]
