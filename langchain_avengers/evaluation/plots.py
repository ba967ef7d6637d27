"""Matplotlib figures of an evaluation: the accuracy-cost frontier and model usage per alpha.

Each model keeps one colour and marker in both figures (:func:`model_styles`), legends sit
outside the axes so they never cover data, and the router curve is labelled with a few of its
alphas.

matplotlib is an optional dependency: ``pip install "langchain-avengers[plot]"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from langchain_avengers.evaluation.evaluate import Evaluation

__all__ = [
    "PLOT_INSTALL",
    "ModelStyle",
    "model_styles",
    "plot_pareto",
    "plot_usage",
    "require_matplotlib",
]

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


MARKERS = ("s", "o", "D", "^", "v", "P", "X")
"""Marker cycle; its length (7) is prime to the palettes' sizes, so colour and marker together
stay unique even where colours repeat in shade."""
MARKED_ALPHAS = (0.0, 1.0, 0.4, 0.6, 0.2, 0.8)
"""Alphas labelled on the router curve, most important first (kept when labels collide)."""
GOLDEN_RATIO_STEP = (np.sqrt(5) - 1) / 2
LEGEND_ROWS = 24
LABEL_SPACING_PX = 14.0
"""Alpha labels of points closer than this on screen are merged into one label."""


@dataclass(frozen=True)
class ModelStyle:
    """How one model is drawn in every figure."""

    color: tuple[float, float, float, float]
    """RGBA, each in [0, 1]."""
    marker: str
    """A matplotlib marker."""


def model_styles(models: Sequence[str]) -> dict[str, ModelStyle]:
    """A distinct colour and marker per model, in the order given.

    Up to 10 models take matplotlib's qualitative ``tab10`` palette; up to 20 ``tab20`` (its
    ten strong shades first, then the ten light ones); more take colours of the perceptually
    ordered ``turbo`` colour map at golden-ratio steps, which spread evenly over it and keep
    neighbours in the list far apart. Markers cycle through :data:`MARKERS`.
    """
    import matplotlib

    n = len(models)
    if n <= 10:
        colors = [matplotlib.colormaps["tab10"](i) for i in range(n)]
    elif n <= 20:
        order = [*range(0, 20, 2), *range(1, 20, 2)]
        colors = [matplotlib.colormaps["tab20"](i) for i in order[:n]]
    else:  # golden-ratio steps: even coverage, and neighbours far apart on the map
        positions = 0.04 + 0.92 * np.mod(np.arange(n) * GOLDEN_RATIO_STEP, 1.0)
        colors = [matplotlib.colormaps["turbo"](p) for p in positions]
    return {
        model: ModelStyle(color=tuple(float(c) for c in color), marker=MARKERS[i % len(MARKERS)])  # type: ignore[arg-type]
        for i, (model, color) in enumerate(zip(models, colors, strict=True))
    }


def _pyplot() -> Any:
    matplotlib = require_matplotlib()
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(evaluation: Evaluation, path: str | Path, *, title: str | None = None) -> Path:
    """Accuracy against cost (log x) of the router curve, every single model and the oracle.

    Some alphas are marked along the curve; each model has its own colour and marker, named
    in the legend beside the axes.

    Returns:
        The PNG written.
    """
    plt = _pyplot()
    return _save(_pareto_figure(plt, evaluation, title), plt, Path(path))


def plot_usage(evaluation: Evaluation, path: str | Path, *, title: str | None = None) -> Path:
    """Share of held-out queries sent to each model, per alpha (stacked; legend beside it).

    Returns:
        The PNG written.
    """
    plt = _pyplot()
    return _save(_usage_figure(plt, evaluation, title), plt, Path(path))


def _pareto_figure(plt: Any, evaluation: Evaluation, title: str | None) -> Any:
    curve = evaluation.curve_mean()
    singles = evaluation.singles_mean()
    styles = model_styles([s["model"] for s in singles])
    fig, ax = plt.subplots(figsize=_figure_size(len(singles) + 2, 5.5), layout="constrained")
    costs = [p["cost"] for p in curve]
    accuracies = [100 * p["accuracy"] for p in curve]
    ax.plot(costs, accuracies, "-", color="black", linewidth=1.4, zorder=3)
    ax.plot(
        costs,
        accuracies,
        "o",
        color="black",
        markersize=2.5,
        label="Avengers-Pro router (α sweep)",
        zorder=3,
    )
    for single in singles:
        if not (math.isfinite(single["cost"]) and math.isfinite(single["accuracy"])):
            continue  # no held-out answer: nothing to place
        style = styles[single["model"]]
        ax.scatter(
            single["cost"],
            100 * single["accuracy"],
            marker=style.marker,
            color=style.color,
            s=55,
            edgecolor="black",
            linewidth=0.6,
            label=single["model"],
            zorder=4,
        )
    oracle = evaluation.oracle_mean()
    ax.scatter(
        oracle["cost"],
        100 * oracle["accuracy"],
        marker="*",
        s=160,
        color="gold",
        edgecolor="black",
        label="oracle (per-query best)",
        zorder=4,
    )
    ax.set_xscale("log")
    ax.set_xlabel("cost, USD per 1,000 queries (log scale)")
    ax.set_ylabel("accuracy on held-out queries (%)")
    ax.set_title(title or f"Held-out accuracy vs cost ({_seeds(evaluation)})")
    ax.grid(alpha=0.3, which="both")
    ax.margins(x=0.08, y=0.08)
    _outside_legend(fig, ax, len(singles) + 2)
    fig.canvas.draw()
    placed = [(s["cost"], 100 * s["accuracy"]) for s in [*singles, oracle]]
    _mark_alphas(fig, ax, curve, _marker_boxes(ax, placed))
    return fig


def _usage_figure(plt: Any, evaluation: Evaluation, title: str | None) -> Any:
    curve = evaluation.curve_mean()
    models = [s["model"] for s in evaluation.singles_mean()]
    styles = model_styles(models)
    alphas = [p["alpha"] for p in curve]
    shares = [[100 * p["usage"].get(m, 0.0) for p in curve] for m in models]
    fig, ax = plt.subplots(figsize=_figure_size(len(models), 5.0), layout="constrained")
    ax.stackplot(alphas, shares, labels=models, colors=[styles[m].color for m in models])
    ax.set_xlabel("α (weight of accuracy against cost)")
    ax.set_ylabel("share of held-out queries (%)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 100)
    ax.set_title(title or f"Model usage per α ({_seeds(evaluation)})")
    _outside_legend(fig, ax, len(models), reverse=True)  # top of the stack listed first
    return fig


def _seeds(evaluation: Evaluation) -> str:
    n = len(evaluation.splits)
    return f"mean of {n} seeds" if n > 1 else "1 seed"


def _legend_columns(n_entries: int) -> int:
    return max(1, math.ceil(n_entries / LEGEND_ROWS))


def _figure_size(n_entries: int, height: float) -> tuple[float, float]:
    """Wide enough for the axes and a legend of ``n_entries`` beside them."""
    return 7.5 + 2.6 * _legend_columns(n_entries), height


def _outside_legend(fig: Any, ax: Any, n_entries: int, *, reverse: bool = False) -> None:
    """The legend to the right of the axes, in columns of at most LEGEND_ROWS entries."""
    handles, labels = ax.get_legend_handles_labels()
    if reverse:
        handles, labels = handles[::-1], labels[::-1]
    fig.legend(
        handles,
        labels,
        loc="outside right upper",
        fontsize=8,
        ncols=_legend_columns(n_entries),
        frameon=False,
    )


def _mark_alphas(fig: Any, ax: Any, curve: list[dict[str, Any]], avoid: list[Any]) -> None:
    """Label the curve points of :data:`MARKED_ALPHAS` with their alpha.

    Points that coincide on screen share one label; each label goes to the first corner of
    its point where it stays inside the axes and clear of other labels and of ``avoid``
    (screen boxes of the model markers), else it is left out.
    """
    fig.canvas.draw()  # lay the figure out, so that screen positions are final
    alphas = np.array([p["alpha"] for p in curve])
    picked: list[int] = []
    for target in MARKED_ALPHAS:
        i = int(np.argmin(np.abs(alphas - target)))
        if abs(alphas[i] - target) <= 0.011 and i not in picked:
            picked.append(i)
    points = {i: (curve[i]["cost"], 100 * curve[i]["accuracy"]) for i in picked}
    screen = {i: ax.transData.transform(points[i]) for i in picked}
    groups: list[list[int]] = []
    for i in picked:
        near = [g for g in groups if _distance(screen[g[0]], screen[i]) < LABEL_SPACING_PX]
        if near:
            near[0].append(i)
        else:
            groups.append([i])
    placed: list[Any] = []
    for group in groups:
        xy = points[group[0]]
        ax.plot(*xy, "o", markersize=6, markerfacecolor="none", color="black", zorder=5)
        text = "α=" + ", ".join(f"{alphas[i]:g}" for i in sorted(group))
        box = _place_label(fig, ax, text, xy, [*placed, *avoid])
        if box is not None:
            placed.append(box)


LABEL_CORNERS = (
    ((-7, 7), "right", "bottom"),
    ((7, -7), "left", "top"),
    ((7, 7), "left", "bottom"),
    ((-7, -7), "right", "top"),
)
"""Where an alpha label may sit around its point, in order of preference (offset points)."""


def _place_label(
    fig: Any, ax: Any, text: str, xy: tuple[float, float], taken: list[Any]
) -> Any | None:
    """Annotate ``xy`` at the first free corner; the label's screen box, or None if none."""
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    for offset, ha, va in LABEL_CORNERS:
        label = ax.annotate(
            text,
            xy,
            xytext=offset,
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=7,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
            arrowprops={"arrowstyle": "-", "color": "0.4", "linewidth": 0.6},
            zorder=5,
        )
        label.update_positions(renderer)
        box = Text.get_window_extent(label, renderer)  # the text, not its leader line
        fits = inside.containsx(box.x0) and inside.containsx(box.x1)
        fits = fits and inside.containsy(box.y0) and inside.containsy(box.y1)
        if fits and not any(box.overlaps(other) for other in taken):
            return box
        label.remove()
    return None


def _marker_boxes(ax: Any, points: list[tuple[float, float]], half_px: float = 8.0) -> list[Any]:
    """Screen boxes around data points, for labels to keep clear of."""
    from matplotlib.transforms import Bbox

    boxes = []
    for xy in points:
        x, y = ax.transData.transform(xy)
        boxes.append(Bbox.from_extents(x - half_px, y - half_px, x + half_px, y + half_px))
    return boxes


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot(*(np.asarray(a) - np.asarray(b))))


def _save(fig: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
