"""Matplotlib figures of an evaluation: the accuracy-cost frontier and model usage per alpha.

matplotlib is an optional dependency: ``pip install "langchain-avengers[plot]"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_avengers.evaluation import Evaluation

__all__ = ["PLOT_INSTALL", "plot_pareto", "plot_usage", "require_matplotlib"]

PLOT_INSTALL = 'pip install "langchain-avengers[plot]"'


def require_matplotlib() -> Any:
    """matplotlib, or an ImportError saying how to install it (checked before slow work).

    Raises:
        ImportError: matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError as error:
        msg = f"plots need matplotlib, which is not installed: {PLOT_INSTALL}"
        raise ImportError(msg) from error
    return matplotlib


def _pyplot() -> Any:
    matplotlib = require_matplotlib()
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(evaluation: Evaluation, path: str | Path, *, title: str | None = None) -> Path:
    """Accuracy against cost (log x): single models as labelled points, the router curve.

    Returns:
        The PNG written.
    """
    plt = _pyplot()
    curve = evaluation.curve_mean()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(
        [p["cost"] for p in curve],
        [100 * p["accuracy"] for p in curve],
        "-o",
        markersize=3,
        label="Avengers-Pro router (α sweep)",
    )
    for single in evaluation.singles_mean():
        ax.scatter(single["cost"], 100 * single["accuracy"], marker="s", color="gray")
        ax.annotate(
            single["model"].split("/")[-1],
            (single["cost"], 100 * single["accuracy"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
        )
    oracle = evaluation.oracle_mean()
    ax.scatter(
        oracle["cost"],
        100 * oracle["accuracy"],
        marker="*",
        s=90,
        color="gold",
        edgecolor="black",
        label="oracle",
    )
    ax.set_xscale("log")
    ax.set_xlabel("cost, USD per 1,000 queries (log scale)")
    ax.set_ylabel("accuracy on held-out queries (%)")
    ax.set_title(title or f"Held-out accuracy vs cost ({len(evaluation.splits)} seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize=8, framealpha=0.6)
    return _save(fig, plt, Path(path))


def plot_usage(evaluation: Evaluation, path: str | Path, *, title: str | None = None) -> Path:
    """Share of held-out queries sent to each model, per alpha (stacked).

    Returns:
        The PNG written.
    """
    plt = _pyplot()
    curve = evaluation.curve_mean()
    models = list(curve[0]["usage"])
    alphas = [p["alpha"] for p in curve]
    shares = [[100 * p["usage"][m] for p in curve] for m in models]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.stackplot(alphas, shares, labels=[m.split("/")[-1] for m in models])
    ax.set_xlabel("α (weight of accuracy against cost)")
    ax.set_ylabel("share of queries (%)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 100)
    ax.set_title(title or "Model usage per α")
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    return _save(fig, plt, Path(path))


def _save(fig: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
