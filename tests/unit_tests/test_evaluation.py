"""Evaluation: the four figures, seed-averaged results, the JSON report and plots, the oracle
and the splits.

``compute_figures`` and ``Evaluation`` are checked on hand-made points with
hand-computed answers. Choosing alpha for a budget is in ``test_evaluation_choose_alpha.py``,
``evaluate_router`` end to end in ``test_evaluation_end_to_end.py``.

The hand-made points and the two-seed evaluation are in ``tests/hand_made_evaluation.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hand_made_evaluation import BEST, SINGLES, point, single, two_seed_evaluation

from langchain_avengers import CalibrationData
from langchain_avengers.evaluation.evaluate import (
    AIQ_POINTS,
    CurvePoint,
    ModelPoint,
    _oracle_point,
    compute_figures,
    split_indices,
)
from langchain_avengers.evaluation.plots import plot_pareto, plot_usage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def aiq_by_hand(singles: list[ModelPoint], curve: list[CurvePoint]) -> float:
    """Independent AIQ: 200 costs evenly spaced in log(cost), best accuracy at or below each."""
    costs = [p.cost for p in singles]
    grid = np.exp(np.linspace(math.log(min(costs)), math.log(max(costs)), 200))
    total = 0.0
    for budget in grid:
        reachable = [p.accuracy for p in curve if p.cost <= budget]
        total += max(reachable, default=0.0)
    return total / 200


# ---------------------------------------------------------------- the figures


def test_compute_figures_by_hand() -> None:
    # best single: m2, accuracy A* = 0.8 at cost C* = 10; 0.95 A* = 0.76, 0.90 A* = 0.72
    curve = [
        point(0.0, 0.4, 0.5),
        point(0.2, 0.7, 2.0),
        point(0.4, 0.74, 3.0),
        point(0.5, 0.78, 5.0),
        point(0.75, 0.8, 8.0),
        point(1.0, 0.85, 20.0),
    ]
    figures = compute_figures(SINGLES, curve, BEST)
    assert figures.acc_at_best_cost == pytest.approx(0.8)  # best among costs <= 10
    assert figures.cost_to_match == pytest.approx(0.8)  # 8 / 10: first with accuracy >= 0.8
    assert figures.cost_to_95 == pytest.approx(0.5)  # 5 / 10: first with accuracy >= 0.76
    # grid 1..100 (log): 30 points < 2 (best 0.4), 18 < 3 (0.7), 22 < 5 (0.74), 20 < 8 (0.78),
    # 40 < 20 (0.8), 70 >= 20 (0.85)
    hand = (30 * 0.4 + 18 * 0.7 + 22 * 0.74 + 20 * 0.78 + 40 * 0.8 + 70 * 0.85) / 200
    assert hand == pytest.approx(0.7399)
    assert figures.aiq == pytest.approx(hand)
    assert figures.aiq == pytest.approx(aiq_by_hand(SINGLES, curve))
    assert AIQ_POINTS == 200


def test_compute_figures_boundaries_are_inclusive() -> None:
    # a point costing exactly C* counts for acc@best-cost; exactly A* counts as a match
    curve = [point(0.0, 0.5, 4.0), point(0.5, 0.8, 10.0), point(1.0, 0.9, 10.0 + 1e-9)]
    figures = compute_figures(SINGLES, curve, BEST)
    assert figures.acc_at_best_cost == pytest.approx(0.8)
    assert figures.cost_to_match == pytest.approx(1.0)
    assert figures.cost_to_95 == pytest.approx(1.0)


def test_compute_figures_none_where_never_reached() -> None:
    curve = [point(0.0, 0.5, 50.0), point(1.0, 0.7, 200.0)]
    figures = compute_figures(SINGLES, curve, BEST)
    assert figures.acc_at_best_cost is None  # nothing costs <= 10
    assert figures.cost_to_match is None  # nothing reaches 0.8
    assert figures.cost_to_95 is None  # nothing reaches 0.76
    # only the point at cost 50 is ever affordable: 30 of the 200 grid costs are >= 50
    assert figures.aiq == pytest.approx(30 * 0.5 / 200)
    assert figures.aiq == pytest.approx(aiq_by_hand(SINGLES, curve))


def test_compute_figures_router_dearer_than_every_single() -> None:
    curve = [point(0.0, 0.9, 150.0)]
    figures = compute_figures(SINGLES, curve, BEST)
    assert figures.aiq == 0.0
    assert figures.acc_at_best_cost is None
    assert figures.cost_to_match == pytest.approx(15.0)
    assert figures.cost_to_95 == pytest.approx(15.0)


def test_compute_figures_matches_an_independent_computation_on_random_curves() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        singles = [
            single(f"m{i}", *v)
            for i, v in enumerate(
                zip(rng.uniform(0.2, 0.9, 4), rng.uniform(0.1, 50, 4), strict=True)
            )
        ]
        best = max(singles, key=lambda p: p.accuracy)
        curve = [
            point(a, acc, c)
            for a, acc, c in zip(
                np.linspace(0, 1, 9), rng.uniform(0.1, 1, 9), rng.uniform(0.05, 80, 9), strict=True
            )
        ]
        figures = compute_figures(singles, curve, best)
        assert figures.aiq == pytest.approx(aiq_by_hand(singles, curve))
        under = [p.accuracy for p in curve if p.cost <= best.cost]
        assert figures.acc_at_best_cost == (max(under) if under else None)
        match = [p.cost for p in curve if p.accuracy >= best.accuracy]
        expected_match = min(match) / best.cost if match else None
        assert figures.cost_to_match == pytest.approx(expected_match)
        near = [p.cost for p in curve if p.accuracy >= 0.95 * best.accuracy]
        assert figures.cost_to_95 == pytest.approx(min(near) / best.cost if near else None)


# ---------------------------------------------------------------- seed-averaged results


def test_figures_are_averaged_over_seeds_and_none_if_any_seed_misses() -> None:
    figures = two_seed_evaluation().figures
    assert figures.acc_at_best_cost == pytest.approx(0.75)
    assert figures.cost_to_match is None
    assert figures.cost_to_95 == pytest.approx(0.55)
    assert figures.aiq == pytest.approx(0.65)


def test_curve_singles_and_oracle_means() -> None:
    evaluation = two_seed_evaluation()
    curve = evaluation.curve_mean()
    assert [p["alpha"] for p in curve] == [0.0, 0.5, 1.0]
    assert [p["accuracy"] for p in curve] == pytest.approx([0.45, 0.74, 0.875])
    assert [p["cost"] for p in curve] == pytest.approx([1.0, 5.5, 25.0])
    assert [p["accuracy_std"] for p in curve] == pytest.approx([0.05, 0.04, 0.025])
    assert [p["cost_std"] for p in curve] == pytest.approx([0.5, 0.5, 5.0])
    assert curve[1]["usage"] == pytest.approx({"m1": 0.25, "m2": 0.75, "m3": 0.0})
    assert evaluation.best_single_mean() == pytest.approx(
        {"model": "m2", "accuracy": 0.8, "cost": 11.0, "total_cost": 0.011, "coverage": 1.0}
    )
    oracle = evaluation.oracle_mean()
    assert (oracle["accuracy"], oracle["cost"]) == pytest.approx((0.925, 4.0))


def test_best_single_prefers_full_coverage() -> None:
    evaluation = two_seed_evaluation()
    for split in evaluation.splits:  # m3 best on what it answered, but missed some queries
        split.singles[2] = single("m3", 0.99, 100.0, coverage=0.8)
    assert evaluation.best_single_mean()["model"] == "m2"


def test_to_dict_report() -> None:
    report = two_seed_evaluation().to_dict()
    assert json.loads(json.dumps(report)) == report
    assert report["figures"] == pytest.approx(
        {"acc_at_best_cost": 0.75, "cost_to_match": None, "cost_to_95": 0.55, "aiq": 0.65}
    )
    assert report["best_single"] == pytest.approx({"model": "m2", "accuracy": 0.8, "cost": 11.0})
    assert report["oracle"] == pytest.approx({"accuracy": 0.925, "cost": 4.0})
    assert [p["alpha"] for p in report["curve"]] == [0.0, 0.5, 1.0]
    assert [p["accuracy"] for p in report["curve"]] == pytest.approx([0.45, 0.74, 0.875])
    assert [p["cost"] for p in report["curve"]] == pytest.approx([1.0, 5.5, 25.0])
    assert [f["seed"] for f in report["figures_per_seed"]] == [0, 1]
    assert report["seeds"] == [0, 1]
    assert report["router"] == {"n_clusters": 3}
    assert {s["model"] for s in report["singles"]} == {"m1", "m2", "m3"}


def test_table_has_a_row_per_single_oracle_and_alpha() -> None:
    table = two_seed_evaluation().table(alphas=(0.0, 1.0))
    lines = table.splitlines()
    assert lines[0] == "|  | d | avg | all | split cost |"
    labels = [line.split("|")[1].strip() for line in lines[2:]]
    assert labels == ["m1", "m2", "m3", "oracle", "router α=0", "router α=1"]
    assert "| m2 | 80.0 | 80.0 | 80.0 | $0.011 |" in lines
    assert "| m1 | 55.0 | 55.0 | 55.0 | $0.0015 |" in lines


def test_table_tells_cheap_models_apart() -> None:
    """A pool of cheap models read ``0.000`` for every model with three fixed decimals."""
    evaluation = two_seed_evaluation()
    cheap = dataclasses.replace(
        evaluation,
        splits=[
            dataclasses.replace(
                split,
                singles=[
                    dataclasses.replace(p, total_cost=p.total_cost / 1000) for p in split.singles
                ],
            )
            for split in evaluation.splits
        ],
    )
    rows = {
        line.split("|")[1].strip(): line.split("|")[-2].strip()
        for line in cheap.table().splitlines()[2:]
    }
    assert (rows["m1"], rows["m2"], rows["m3"]) == ("$0.0000015", "$0.000011", "$0.000095")


def test_plots_write_png_files(tmp_path: Path) -> None:
    evaluation = two_seed_evaluation()
    pareto = plot_pareto(evaluation, tmp_path / "out" / "pareto.png")
    usage = plot_usage(evaluation, tmp_path / "usage.png", title="usage")
    for path in (pareto, usage):
        assert path.is_file()
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert path.stat().st_size > 5_000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pareto.png"]


def test_plots_without_matplotlib_name_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install "langchain-avengers\[plot\]"'):
        plot_pareto(two_seed_evaluation(), tmp_path / "pareto.png")
    assert not (tmp_path / "pareto.png").exists()


# ---------------------------------------------------------------- the oracle


def test_oracle_takes_the_cheapest_of_the_top_scoring_models() -> None:
    nan = float("nan")
    held_out = CalibrationData(
        queries=["q1", "q2", "q3", "q4"],
        models=["dear", "mid", "cheap"],
        scores=np.array(
            [
                [1.0, 1.0, 0.0],  # dear and mid top: mid is cheaper
                [1.0, 1.0, 1.0],  # all top: cheap
                [0.5, 0.0, 0.0],  # only dear top
                [1.0, 0.5, 1.0],
            ]
        ),  # cheap top but its cost is unknown: dear
        costs=np.array(
            [
                [0.010, 0.002, 0.001],
                [0.010, 0.002, 0.001],
                [0.010, 0.002, 0.001],
                [0.010, 0.002, nan],
            ]
        ),
        datasets=["a", "a", "b", "b"],
    )
    oracle = _oracle_point(held_out)
    assert oracle.accuracy == pytest.approx((1.0 + 1.0 + 0.5 + 1.0) / 4)
    assert oracle.cost == pytest.approx(1000 * (0.002 + 0.001 + 0.010 + 0.010) / 4)
    assert oracle.total_cost == pytest.approx(0.023)
    assert oracle.per_dataset == pytest.approx({"a": 1.0, "b": 0.75})


# ---------------------------------------------------------------- splits


def test_split_is_seeded_70_30_and_stratified_by_dataset(small_jsonl: Path) -> None:
    data = CalibrationData.from_path(small_jsonl)
    train, test = split_indices(data, seed=0)
    assert (len(train), len(test)) == (63, 27)
    assert sorted([*train, *test]) == list(range(90))
    datasets = np.array(data.datasets)
    for name in ("arith", "capitals", "code"):
        assert (datasets[test] == name).sum() == 9
    again_train, again_test = split_indices(data, seed=0)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(test, again_test)
    assert not np.array_equal(test, split_indices(data, seed=1)[1])


def test_split_without_usable_strata_still_splits(tmp_path: Path) -> None:
    rows = [
        {
            "query": f"q{i}",
            "dataset": "rare" if i == 0 else "common",
            "records": {"a": 1},
            "usages": {"a": {"cost": 0.1}},
        }
        for i in range(10)
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train, test = split_indices(CalibrationData.from_path(path), seed=3)
    assert (len(train), len(test)) == (7, 3)
    assert sorted([*train, *test]) == list(range(10))
