"""Plots: a distinct colour per model for any pool size, legends outside the data, alphas
marked on the router curve without overprinting."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from langchain_avengers.evaluation.evaluate import (
    DEFAULT_ALPHAS,
    CurvePoint,
    Evaluation,
    Figures,
    ModelPoint,
    SplitEvaluation,
)
from langchain_avengers.evaluation.plots import (
    _pareto_figure,
    _pyplot,
    _usage_figure,
    model_styles,
    plot_pareto,
    plot_usage,
)

pytestmark = pytest.mark.slow  # matplotlib renders: `pytest -m slow` (test_evaluation draws one)

POOL_SIZES = [1, 4, 10, 11, 20, 21, 60]


def pool_evaluation(n_models: int, seed: int = 0) -> Evaluation:
    """One seed: n models on a rising cost-accuracy line, a router curve sweeping them."""
    rng = np.random.default_rng(seed)
    names = [f"vendor-{i % 3}/model-{i}" for i in range(n_models)]
    costs = np.geomspace(0.05, 20, n_models)
    accuracies = np.clip(
        0.55 + 0.35 * np.linspace(0, 1, n_models) + rng.normal(0, 0.05, n_models), 0, 1
    )
    singles = [
        ModelPoint(name=m, accuracy=float(a), cost=float(c), total_cost=float(c), per_dataset={})
        for m, a, c in zip(names, accuracies, costs, strict=True)
    ]
    curve = []
    for alpha in DEFAULT_ALPHAS:
        share = np.exp(-(((np.arange(n_models) - alpha * (n_models - 1)) / 1.5) ** 2))
        share /= share.sum()
        curve.append(
            CurvePoint(
                alpha=alpha,
                accuracy=float(0.55 + 0.38 * alpha**0.5),
                cost=float(0.05 * 400**alpha),
                total_cost=0.0,
                per_dataset={},
                usage={m: float(s) for m, s in zip(names, share, strict=True)},
            )
        )
    best = max(singles, key=lambda p: p.accuracy)
    oracle = ModelPoint(name="oracle", accuracy=0.97, cost=0.3, total_cost=0.0, per_dataset={})
    split = SplitEvaluation(
        seed=0,
        n_train=70,
        n_test=30,
        singles=singles,
        best_single=best,
        oracle=oracle,
        curve=curve,
        figures=Figures(acc_at_best_cost=None, cost_to_match=None, cost_to_95=None, aiq=0.5),
    )
    return Evaluation(splits=[split], alphas=list(DEFAULT_ALPHAS))


def rgb_distance(a: tuple, b: tuple) -> float:
    return float(np.linalg.norm(np.subtract(a[:3], b[:3])))


@pytest.mark.parametrize("n", POOL_SIZES)
def test_every_model_gets_its_own_colour_and_marker(n: int) -> None:
    styles = model_styles([f"m{i}" for i in range(n)])
    assert list(styles) == [f"m{i}" for i in range(n)]
    colors = [s.color for s in styles.values()]
    assert len({tuple(np.round(c, 3)) for c in colors}) == n
    assert len({(tuple(np.round(s.color, 3)), s.marker) for s in styles.values()}) == n
    if n <= 20:  # a qualitative palette: every pair apart (tab20's closest two: 0.098 in RGB)
        closest = min((rgb_distance(a, b) for a, b in itertools.combinations(colors, 2)), default=1)
        assert closest > 0.09
    else:  # sampled colours: neighbours in the list far apart on the map
        assert min(rgb_distance(a, b) for a, b in itertools.pairwise(colors)) > 0.3


@pytest.mark.parametrize("n", [4, 11, 40])
def test_usage_plot_colours_are_distinct_and_match_the_pareto_markers(n: int) -> None:
    # 11 models: the trial saw the 11th share the 1st's blue (matplotlib's 10-colour cycle)
    plt = _pyplot()
    evaluation = pool_evaluation(n)
    usage = _usage_figure(plt, evaluation, None)
    fills = [tuple(np.round(c.get_facecolor()[0], 3)) for c in usage.axes[0].collections]
    assert len(fills) == n
    assert len(set(fills)) == n
    pareto = _pareto_figure(plt, evaluation, None)
    markers = {
        c.get_label(): tuple(np.round(c.get_facecolor()[0], 3))
        for c in pareto.axes[0].collections
        if c.get_label().startswith("vendor-")
    }
    names = [s["model"] for s in evaluation.singles_mean()]
    assert [markers[m] for m in names] == fills
    plt.close("all")


@pytest.mark.parametrize("n", [4, 11, 60])
@pytest.mark.parametrize("which", ["pareto", "usage"])
def test_the_legend_is_outside_the_data_area(n: int, which: str) -> None:
    plt = _pyplot()
    build = _pareto_figure if which == "pareto" else _usage_figure
    fig = build(plt, pool_evaluation(n), None)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    (legend,) = fig.legends
    data_area = ax.get_window_extent(renderer)
    legend_box = legend.get_window_extent(renderer)
    assert not legend_box.overlaps(data_area)
    figure_box = fig.bbox
    assert legend_box.x1 <= figure_box.x1 + 1  # not cut off
    assert legend_box.y0 >= figure_box.y0 - 1
    assert len(legend.get_texts()) == (n + 2 if which == "pareto" else n)
    plt.close(fig)


@pytest.mark.parametrize("n", [4, 11])
def test_alphas_are_marked_on_the_router_curve_without_overprinting(n: int) -> None:
    plt = _pyplot()
    fig = _pareto_figure(plt, pool_evaluation(n), None)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    labels = [t for t in ax.texts if t.get_text().startswith("α=")]
    texts = [t.get_text() for t in labels]
    assert "α=0" in texts[0]
    assert any(t.endswith("1") for t in texts)
    assert len(texts) >= 4
    boxes = [t.get_window_extent(renderer) for t in labels]
    inside = ax.get_window_extent(renderer)
    for box in boxes:
        assert inside.x0 <= box.x0
        assert box.x1 <= inside.x1
        assert inside.y0 <= box.y0
        assert box.y1 <= inside.y1
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    plt.close(fig)


def test_points_that_coincide_share_one_alpha_label() -> None:
    plt = _pyplot()
    evaluation = pool_evaluation(4)
    split = evaluation.splits[0]
    first = split.curve[0]
    for i, point in enumerate(split.curve):  # alpha 0 to 0.4 all route to the cheapest model
        if point.alpha <= 0.4:
            split.curve[i] = first.__class__(**{**first.__dict__, "alpha": point.alpha})
    fig = _pareto_figure(plt, evaluation, None)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "α=0, 0.2, 0.4" in texts
    plt.close(fig)


def test_a_model_without_held_out_answers_is_left_off_the_frontier(tmp_path: Path) -> None:
    evaluation = pool_evaluation(4)
    split = evaluation.splits[0]
    nan = float("nan")
    split.singles[1] = ModelPoint(
        name=split.singles[1].name,
        accuracy=nan,
        cost=nan,
        total_cost=nan,
        per_dataset={},
        coverage=0.0,
    )
    fig = _pareto_figure(_pyplot(), evaluation, None)
    labels = {c.get_label() for c in fig.axes[0].collections}
    assert split.singles[1].name not in labels
    assert plot_pareto(evaluation, tmp_path / "p.png").stat().st_size > 5_000
    assert plot_usage(evaluation, tmp_path / "u.png").stat().st_size > 5_000
