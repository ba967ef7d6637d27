"""Evaluation: splits, the four figures, the oracle, budgets, the JSON report and plots.

``compute_figures`` and ``Evaluation`` are checked on hand-made points with hand-computed
answers; ``evaluate_router`` is checked end to end against an independent recomputation on the
small fixture, where the keyword embeddings make the clusters equal to the datasets.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from langchain_avengers import CalibrationData, ClusterRouter, RecordsError, load_records
from langchain_avengers.evaluation import (
    AIQ_POINTS,
    DEFAULT_ALPHAS,
    CurvePoint,
    Evaluation,
    Figures,
    ModelPoint,
    SplitEvaluation,
    _oracle_point,
    compute_figures,
    evaluate_router,
    evaluate_split,
    split_indices,
)
from langchain_avengers.plotting import plot_pareto, plot_usage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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


@pytest.mark.parametrize(
    ("target", "alpha"),
    [
        ({"target_cost": 6.0}, 0.5),
        ({"target_cost": 5.0}, 0.0),
        ({"target_cost": 1e9}, 1.0),
        ({"min_accuracy": 0.7}, 0.5),
        ({"min_accuracy": 0.8}, 1.0),
        ({"min_accuracy": 0.1}, 0.0),
    ],
)
def test_choose_alpha_keeps_the_worse_seed_within_the_target(target: dict, alpha: float) -> None:
    # no spread within a seed: the 90% bound is the dearer seed, the 10% bound the worse one
    # (alpha 0.5 costs 5 and 6 and scores 0.78 and 0.70 in the two seeds)
    choice = two_seed_evaluation().choose_alpha(**target)
    assert choice.alpha == alpha
    assert choice.n_seeds == 2


def test_choose_alpha_reports_what_to_expect() -> None:
    choice = two_seed_evaluation().choose_alpha(target_cost=6.0)
    assert (choice.accuracy, choice.accuracy_std) == pytest.approx((0.74, 0.04))
    assert (choice.cost, choice.cost_std) == pytest.approx((5.5, 0.5))
    assert (choice.cost_bound, choice.accuracy_bound) == pytest.approx((6.0, 0.7))
    assert (choice.confidence, choice.n_test, choice.n_resamples) == (0.9, 3, 1000)
    assert choice.describe() == (
        "alpha=0.5: cost $5.5 per 1,000 queries expected, at most $6 with 90% confidence; "
        "accuracy 74.0% expected, at least 70.0% with 90% confidence (batches of 3 queries; "
        "2 seeds x 1,000 bootstrap resamples)"
    )


@pytest.mark.parametrize(
    ("target", "match"),
    [
        (
            {"target_cost": 1.4},
            r"no alpha stays within \$1.4 per 1,000 queries with 90% confidence; the cheapest "
            r"is alpha=0, \$1 expected and at most \$1.5",
        ),
        (
            {"min_accuracy": 0.86},
            r"no alpha reaches 86.0% with 90% confidence on held-out data; the best is "
            r"alpha=1, 87.5% expected and at least 85.0%",
        ),
        ({}, "exactly one"),
        ({"target_cost": 5.0, "min_accuracy": 0.5}, "exactly one"),
        ({"target_cost": 5.0, "confidence": 1.0}, r"confidence must be in \[0.5, 1\)"),
        ({"target_cost": 5.0, "confidence": 0.2}, "confidence must be"),
    ],
)
def test_choose_alpha_impossible_targets(target: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        two_seed_evaluation().choose_alpha(**target)


def test_choose_alpha_needs_per_query_outcomes() -> None:
    evaluation = two_seed_evaluation()
    evaluation.splits[1] = dataclasses.replace(evaluation.splits[1], routed_costs=None)
    with pytest.raises(ValueError, match=r"seed 1 has no per-query outcomes.*evaluate_router"):
        evaluation.choose_alpha(target_cost=6.0)


def synthetic_evaluation(seed: int = 0, n_seeds: int = 3, n_test: int = 300) -> Evaluation:
    """Curves with spread: per-query costs log-normal around a mean rising with alpha, scores
    0/1 with a rate rising with alpha, and each seed's router a little dearer or cheaper."""
    rng = np.random.default_rng(seed)
    alphas = [round(a, 2) for a in np.linspace(0, 1, 21)]
    splits = []
    for s in range(n_seeds):
        dearer = rng.uniform(0.85, 1.15)
        mean_cost = dearer * np.array([0.001 * 20 ** (a**2) for a in alphas])  # USD per query
        rate = np.array([0.6 + 0.3 * math.sqrt(a) for a in alphas])
        costs = mean_cost[:, None] * rng.lognormal(-0.5, 1.0, size=(len(alphas), n_test))
        scores = (rng.random((len(alphas), n_test)) < rate[:, None]).astype(float)
        curve = [
            point(a, float(sc.mean()), 1000 * float(c.mean()))
            for a, c, sc in zip(alphas, costs, scores, strict=True)
        ]
        split = SplitEvaluation(
            seed=s,
            n_train=700,
            n_test=n_test,
            singles=SINGLES,
            best_single=BEST,
            oracle=single("oracle", 0.95, 1.0),
            curve=curve,
            figures=compute_figures(SINGLES, curve, BEST),
            routed_costs=costs,
            routed_scores=scores,
        )
        splits.append(split)
    return Evaluation(splits=splits, alphas=alphas)


def mean_curve_alpha(evaluation: Evaluation, target: float) -> float:
    """The rule before bounds: the most accurate alpha whose seed-mean cost is within target."""
    fits = [p for p in evaluation.curve_mean() if p["cost"] <= target]
    return max(fits, key=lambda p: (p["accuracy"], -p["cost"]))["alpha"]


def test_cost_bounds_sit_above_the_means_and_match_a_by_hand_bootstrap() -> None:
    evaluation = synthetic_evaluation()
    rows = evaluation.curve_bounds()
    for i, row in enumerate(rows):
        assert row["cost_bound"] > row["cost"]
        assert row["accuracy_bound"] < row["accuracy"]
        # by hand: resample each seed's queries, pool, take the 90% quantile of the means
        rng = np.random.default_rng(1)
        means = [
            1000 * s.routed_costs[i][rng.integers(0, s.n_test, s.n_test)].mean()  # type: ignore[index]
            for s in evaluation.splits
            for _ in range(2000)
        ]
        assert row["cost_bound"] == pytest.approx(np.quantile(means, 0.9), rel=0.02)


@pytest.mark.parametrize("seed", range(5))
def test_choose_alpha_keeps_its_bound_under_the_target_on_synthetic_curves(seed: int) -> None:
    evaluation = synthetic_evaluation(seed)
    rows = evaluation.curve_bounds()
    stricter = 0
    for target in np.geomspace(1.5, 18.0, 12):
        choice = evaluation.choose_alpha(target_cost=float(target))
        assert choice.cost <= choice.cost_bound <= target
        chosen = next(r for r in rows if r["alpha"] == choice.alpha)
        assert chosen["cost_bound"] == choice.cost_bound
        # no more accurate alpha has a bound within the target
        assert all(r["cost_bound"] > target for r in rows if r["accuracy"] > choice.accuracy)
        assert choice.alpha <= mean_curve_alpha(evaluation, float(target))
        stricter += choice.alpha < mean_curve_alpha(evaluation, float(target))
    assert stricter >= 3  # the margin is real: often a cheaper alpha than the mean curve's


def test_min_accuracy_keeps_the_lower_bound_above_the_minimum() -> None:
    evaluation = synthetic_evaluation(seed=2)
    rows = evaluation.curve_bounds()
    for minimum in (0.62, 0.7, 0.75, 0.8, 0.85):
        choice = evaluation.choose_alpha(min_accuracy=minimum)
        assert choice.accuracy >= choice.accuracy_bound >= minimum
        cheaper = [r for r in rows if r["cost"] < choice.cost]
        assert all(r["accuracy_bound"] < minimum for r in cheaper)


def test_more_confidence_never_buys_a_dearer_alpha() -> None:
    evaluation = synthetic_evaluation(seed=3)
    for target in (3.0, 8.0):
        alphas = [
            evaluation.choose_alpha(target_cost=target, confidence=c).alpha
            for c in (0.5, 0.8, 0.9, 0.99)
        ]
        assert alphas == sorted(alphas, reverse=True)
    reaching = [
        evaluation.choose_alpha(min_accuracy=0.8, confidence=c).alpha for c in (0.5, 0.9, 0.99)
    ]
    assert reaching == sorted(reaching)


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
    assert lines[0] == "|  | d | avg | all | split cost $ |"
    labels = [line.split("|")[1].strip() for line in lines[2:]]
    assert labels == ["m1", "m2", "m3", "oracle", "router α=0", "router α=1"]
    assert "| m2 | 80.0 | 80.0 | 80.0 | 0.011 |" in lines


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


# ---------------------------------------------------------------- end to end


def recompute_split(data: CalibrationData, seed: int) -> dict:
    """The protocol, redone by hand with clusters = datasets and top_p = 1."""
    train, test = split_indices(data, seed=seed)
    datasets = np.array(data.datasets)
    n_models = len(data.models)
    picks = {0.0: [], 1.0: []}
    for row in test:
        in_cluster = train[datasets[train] == datasets[row]]
        acc = np.nanmean(data.scores[in_cluster], axis=0)
        cost = np.nanmean(data.costs[in_cluster], axis=0)
        usable = [
            j
            for j in range(n_models)
            if not np.isnan(data.scores[row, j]) and not np.isnan(data.costs[row, j])
        ]
        picks[0.0].append(min(usable, key=lambda j: cost[j]))
        picks[1.0].append(min(usable, key=lambda j: (-acc[j], cost[j])))
    curve, routed = {}, {}
    for alpha, chosen in picks.items():
        scores = data.scores[test, chosen]
        costs = data.costs[test, chosen]
        curve[alpha] = (
            scores.mean(),
            1000 * costs.mean(),
            np.bincount(chosen, minlength=n_models) / len(test),
        )
        routed[alpha] = (costs, scores)
    singles = {}
    for j, model in enumerate(data.models):
        ok = ~np.isnan(data.scores[test, j]) & ~np.isnan(data.costs[test, j])
        singles[model] = (
            data.scores[test, j][ok].mean(),
            1000 * data.costs[test, j][ok].mean(),
            ok.mean(),
        )
    oracle_scores, oracle_costs = [], []
    for row in test:
        usable = [
            j
            for j in range(n_models)
            if not np.isnan(data.scores[row, j]) and not np.isnan(data.costs[row, j])
        ]
        top = max(data.scores[row, j] for j in usable)
        j = min((j for j in usable if data.scores[row, j] == top), key=lambda j: data.costs[row, j])
        oracle_scores.append(data.scores[row, j])
        oracle_costs.append(data.costs[row, j])
    return {
        "curve": curve,
        "routed": routed,
        "singles": singles,
        "oracle": (np.mean(oracle_scores), 1000 * np.mean(oracle_costs)),
        "n_test": len(test),
    }


@pytest.mark.parametrize(
    "models",
    [["acme/tiny", "acme/medium", "acme/large"], ["acme/large", "acme/medium", "acme/tiny"]],
    ids=["cheap-first", "dear-first"],
)
def test_evaluate_router_matches_an_independent_recomputation(
    small_jsonl: Path, keyword_embeddings, models: list[str]
) -> None:
    data = CalibrationData.from_records(load_records(small_jsonl), models=models)
    # one k-means fit, so its 3 clusters are the 3 datasets the recomputation uses
    router = ClusterRouter(  # raw means, as the recomputation takes them
        n_clusters=3, top_p=1, cluster_scales=(1.0,), shrinkage=0.0, embedder=keyword_embeddings
    )
    evaluation = evaluate_router(data, router, alphas=[0.0, 1.0], seeds=[0, 1])
    assert [s.seed for s in evaluation.splits] == [0, 1]
    for split in evaluation.splits:
        expected = recompute_split(data, split.seed)
        assert (split.n_train, split.n_test) == (63, expected["n_test"])
        for curve_point in split.curve:
            acc, cost, usage = expected["curve"][curve_point.alpha]
            assert curve_point.accuracy == pytest.approx(acc)
            assert curve_point.cost == pytest.approx(cost)
            assert list(curve_point.usage.values()) == pytest.approx(usage.tolist())
            costs, scores = expected["routed"][curve_point.alpha]
            i = evaluation.alphas.index(curve_point.alpha)
            assert split.routed_costs[i] == pytest.approx(costs)
            assert split.routed_scores[i] == pytest.approx(scores)
        for model_point in split.singles:
            acc, cost, coverage = expected["singles"][model_point.name]
            assert model_point.accuracy == pytest.approx(acc)
            assert model_point.cost == pytest.approx(cost)
            assert model_point.coverage == pytest.approx(coverage)
        assert (split.oracle.accuracy, split.oracle.cost) == pytest.approx(expected["oracle"])
        full = [p for p in split.singles if p.coverage == 1.0]
        assert split.best_single == max(full, key=lambda p: p.accuracy)
        assert split.figures == compute_figures(split.singles, split.curve, split.best_single)


def test_alpha_zero_routes_to_the_cheapest_measured_model(
    small_jsonl: Path, keyword_embeddings
) -> None:
    # acme/tiny is the cheapest everywhere, but not measured on 6 code queries: those go to
    # acme/medium, never to an unmeasured model counted as free or as zero.
    router = ClusterRouter(n_clusters=4, top_p=2, embedder=keyword_embeddings)
    evaluation = evaluate_router(small_jsonl, router, alphas=[0.0], seeds=[0])
    split = evaluation.splits[0]
    data = CalibrationData.from_path(small_jsonl)
    _, test = split_indices(data, seed=0)
    tiny_missing = np.isnan(data.scores[test, 0]).mean()
    assert split.curve[0].usage["acme/tiny"] == pytest.approx(1 - tiny_missing)
    assert split.curve[0].usage["acme/medium"] == pytest.approx(tiny_missing)
    assert split.curve[0].usage["acme/large"] == 0.0


def test_evaluate_router_default_grid_and_report(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=4, top_p=2, embedder=keyword_embeddings)
    evaluation = evaluate_router(small_jsonl, router, seeds=[0, 1])
    assert evaluation.alphas == list(DEFAULT_ALPHAS)
    assert len(DEFAULT_ALPHAS) == 51
    assert DEFAULT_ALPHAS[0] == 0.0
    assert DEFAULT_ALPHAS[-1] == 1.0
    report = evaluation.to_dict()
    assert set(report["figures"]) == {"acc_at_best_cost", "cost_to_match", "cost_to_95", "aiq"}
    assert report["best_single"]["model"] == "acme/large"
    assert 0.0 <= report["best_single"]["accuracy"] <= 1.0
    assert report["oracle"]["accuracy"] >= report["best_single"]["accuracy"]
    assert len(report["curve"]) == 51
    assert all(0.0 <= p["accuracy"] <= 1.0 for p in report["curve"])
    assert report["router"]["n_clusters"] == 4
    assert "embedder" not in report["router"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"seeds": []}, "seeds"), ({"alphas": [0.5, 1.5]}, "alphas"), ({"alphas": []}, "alphas")],
)
def test_evaluate_router_rejects_bad_arguments(small_jsonl: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate_router(small_jsonl, ClusterRouter(n_clusters=3), **kwargs)


@pytest.mark.parametrize(
    ("test_size", "stratify", "expected"),
    [
        (0.99, True, "leaves 0 to fit the router and 90 to test"),
        (0.01, True, "at least 3 in each part (one per dataset, 3 datasets)"),
        (0.995, False, "leaves 0 to fit the router and 90 to test, and a split needs at least 1"),
    ],
)
def test_splits_that_cannot_be_made_are_refused_in_our_words(
    small_jsonl: Path, test_size: float, stratify: bool, expected: str
) -> None:
    data = CalibrationData.from_path(small_jsonl)
    with pytest.raises(
        ValueError, match=f"test_size={test_size:g} cannot split 90 queries"
    ) as info:
        split_indices(data, seed=0, test_size=test_size, stratify=stratify)
    assert expected in str(info.value)
    range_ = "between 0.04 and 0.96" if stratify else "between 0.02 and 0.98"
    assert f"choose a test size {range_}" in str(info.value)
    for edge in (0.04, 0.96) if stratify else (0.02, 0.98):  # the sizes it offers do work
        train, test = split_indices(data, seed=0, test_size=edge, stratify=stratify)
        assert min(len(train), len(test)) >= (3 if stratify else 1)


def test_evaluate_split_is_evaluate_router_on_given_rows(
    small_jsonl: Path, keyword_embeddings
) -> None:
    data = CalibrationData.from_path(small_jsonl)
    router = ClusterRouter(n_clusters=4, top_p=2, embedder=keyword_embeddings)
    train, test = split_indices(data, seed=3)
    given = evaluate_split(data, router, train, test, alphas=[0.0, 0.5, 1.0], seed=3)
    seeded = evaluate_router(data, router, alphas=[0.0, 0.5, 1.0], seeds=[3]).splits[0]
    assert given == seeded
    smaller = evaluate_split(data, router, train[:30], test, alphas=[1.0])
    assert (smaller.n_train, smaller.n_test) == (30, seeded.n_test)


# ---------------------------------------------------------------- seeds that cannot be evaluated


def with_lucky_model(small_jsonl: Path) -> CalibrationData:
    """small.jsonl plus acme/lucky, measured on its first query only (the trial's file)."""
    first, *rest = load_records(small_jsonl)
    lucky = first.model_copy(
        update={
            "records": {**first.records, "acme/lucky": 1.0},
            "usages": {**first.usages, "acme/lucky": first.usages["acme/medium"]},
        }
    )
    return CalibrationData.from_records([lucky, *rest])


def test_a_seed_without_training_scores_is_skipped_and_reported(
    small_jsonl: Path, keyword_embeddings
) -> None:
    data = with_lucky_model(small_jsonl)
    router = ClusterRouter(n_clusters=3, top_p=1, embedder=keyword_embeddings)
    in_test = [s for s in range(10) if 0 in split_indices(data, seed=s)[1]]
    assert 0 < len(in_test) < 10  # the trial: these seeds aborted every other seed
    with pytest.warns(UserWarning, match="seeds skipped") as caught:
        evaluation = evaluate_router(data, router, alphas=[0.0, 1.0], seeds=range(10))

    reason = "model(s) ['acme/lucky'] have no score in the 63 training queries of this split"
    assert [(s.seed, s.reason) for s in evaluation.skipped] == [(s, reason) for s in in_test]
    assert [s.seed for s in evaluation.splits] == [s for s in range(10) if s not in in_test]
    seeds = ", ".join(map(str, in_test))
    summary = (
        f"{len(in_test)} of 10 seeds skipped, figures are over the other {10 - len(in_test)} "
        f"(seeds {seeds}: {reason})"
    )
    assert summary in [str(w.message) for w in caught]
    assert evaluation.describe_skipped() == summary
    assert evaluation.table().endswith(f"\n\n{summary}")
    report = evaluation.to_dict()
    assert report["skipped_seeds"] == [{"seed": s, "reason": reason} for s in in_test]
    assert report["seeds"] == [s.seed for s in evaluation.splits]
    # where acme/lucky was fitted on, its single point has no held-out answer: NaN, not 0
    lucky = next(p for p in evaluation.singles_mean() if p["model"] == "acme/lucky")
    assert math.isnan(lucky["accuracy"])
    assert math.isnan(lucky["cost"])


def test_fit_warnings_are_said_once_over_all_seeds(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=3, top_p=1, embedder=keyword_embeddings)
    with pytest.warns(UserWarning, match="fewer than 10 calibration queries") as caught:
        evaluate_router(with_lucky_model(small_jsonl), router, alphas=[1.0], seeds=range(6))
    fitted = [w for w in caught if "fewer than 10 calibration queries" in str(w.message)]
    assert len(fitted) == 1
    assert fitted[0].filename == __file__  # the user's evaluate_router, not our fit inside it


def test_every_seed_failing_is_one_clear_error(small_jsonl: Path, keyword_embeddings) -> None:
    data = with_lucky_model(small_jsonl)
    router = ClusterRouter(n_clusters=3, top_p=1, embedder=keyword_embeddings)
    in_test = [s for s in range(40) if 0 in split_indices(data, seed=s)[1]][:2]
    with pytest.raises(RecordsError) as info:
        evaluate_router(data, router, alphas=[1.0], seeds=in_test)
    assert str(info.value) == (
        f"evaluation: none of the 2 seeds could be evaluated; seed {in_test[0]}: "
        "model(s) ['acme/lucky'] have no score in the 63 training queries of this split"
    )


def test_a_benchmark_missing_from_some_held_out_splits_is_averaged_where_present(
    small_jsonl: Path, keyword_embeddings
) -> None:
    first, *rest = load_records(small_jsonl)
    rare = first.model_copy(update={"dataset": "rare", "index": "only"})
    data = CalibrationData.from_records([rare, first, *rest])
    router = ClusterRouter(n_clusters=3, top_p=1, embedder=keyword_embeddings)
    evaluation = evaluate_router(data, router, alphas=[0.0, 1.0], seeds=range(4))
    present = [s for s in evaluation.splits if "rare" in s.oracle.per_dataset]
    assert 0 < len(present) < len(evaluation.splits)  # held out in some seeds only
    row = next(r for r in evaluation.per_benchmark()["benchmarks"] if r["benchmark"] == "rare")
    assert row["oracle"] == pytest.approx(np.mean([s.oracle.per_dataset["rare"] for s in present]))
    assert all(np.isfinite([row["router"], row["best_single"], row["delta"]]))


def test_oracle_gap_and_per_benchmark_picture(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=3, top_p=1, embedder=keyword_embeddings)
    evaluation = evaluate_router(small_jsonl, router, alphas=[0.0, 0.5, 1.0], seeds=[0, 1])
    gap = evaluation.oracle_gap()
    curve = evaluation.curve_mean()
    oracle = evaluation.oracle_mean()["accuracy"]
    best = evaluation.best_single_mean()
    per_seed_best = [max(p.accuracy for p in s.curve) for s in evaluation.splits]
    assert gap["router_best_accuracy"] == pytest.approx(np.mean(per_seed_best))
    assert gap["router_best_accuracy"] >= evaluation.figures.acc_at_best_cost - 1e-12
    assert gap["oracle_minus_router"] == pytest.approx(oracle - gap["router_best_accuracy"])
    assert gap["oracle_minus_best_single"] == pytest.approx(oracle - best["accuracy"])
    assert gap["oracle_minus_router"] >= 0  # nothing beats the per-query oracle

    picture = evaluation.per_benchmark()
    point = next(p for p in curve if p["alpha"] == picture["alpha"])
    assert point["cost"] <= best["cost"]
    assert picture["best_single"] == best["model"]
    i = evaluation.alphas.index(picture["alpha"])
    for row in picture["benchmarks"]:
        router_acc = np.mean([s.curve[i].per_dataset[row["benchmark"]] for s in evaluation.splits])
        single = [next(p for p in s.singles if p.name == best["model"]) for s in evaluation.splits]
        single_acc = np.mean([p.per_dataset[row["benchmark"]] for p in single])
        assert row["router"] == pytest.approx(router_acc)
        assert row["best_single"] == pytest.approx(single_acc)
        assert row["delta"] == pytest.approx(router_acc - single_acc)
        assert row["oracle"] >= max(router_acc, single_acc) - 1e-12
    report = evaluation.to_dict()
    assert report["oracle_gap"] == gap
    assert report["per_benchmark"] == picture
