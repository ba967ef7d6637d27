"""evaluate_router end to end against an independent recomputation on the small fixture, where
the keyword embeddings make the clusters equal to the datasets; and seeds that cannot be
evaluated.

The hand-made points and the two-seed evaluation are in ``tests/hand_made_evaluation.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from langchain_avengers import CalibrationData, ClusterRouter, RecordsError, load_records
from langchain_avengers.evaluation.evaluate import (
    DEFAULT_ALPHAS,
    compute_figures,
    evaluate_router,
    evaluate_split,
    split_indices,
)

# ---------------------------------------------------------------- end to end


def recompute_split(data: CalibrationData, seed: int) -> dict:
    """The protocol, redone by hand with clusters = datasets and nearest_clusters = 1."""
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
        n_clusters=3,
        nearest_clusters=1,
        cluster_scales=(1.0,),
        shrinkage=0.0,
        embedder=keyword_embeddings,
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
    router = ClusterRouter(n_clusters=4, nearest_clusters=2, embedder=keyword_embeddings)
    evaluation = evaluate_router(small_jsonl, router, alphas=[0.0], seeds=[0])
    split = evaluation.splits[0]
    data = CalibrationData.from_path(small_jsonl)
    _, test = split_indices(data, seed=0)
    tiny_missing = np.isnan(data.scores[test, 0]).mean()
    assert split.curve[0].usage["acme/tiny"] == pytest.approx(1 - tiny_missing)
    assert split.curve[0].usage["acme/medium"] == pytest.approx(tiny_missing)
    assert split.curve[0].usage["acme/large"] == 0.0


def test_evaluate_router_default_grid_and_report(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=4, nearest_clusters=2, embedder=keyword_embeddings)
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
    router = ClusterRouter(n_clusters=4, nearest_clusters=2, embedder=keyword_embeddings)
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
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings)
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
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings)
    with pytest.warns(UserWarning, match="fewer than 10 calibration queries") as caught:
        evaluate_router(with_lucky_model(small_jsonl), router, alphas=[1.0], seeds=range(6))
    fitted = [w for w in caught if "fewer than 10 calibration queries" in str(w.message)]
    assert len(fitted) == 1
    assert fitted[0].filename == __file__  # the user's evaluate_router, not our fit inside it


def test_every_seed_failing_is_one_clear_error(small_jsonl: Path, keyword_embeddings) -> None:
    data = with_lucky_model(small_jsonl)
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings)
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
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings)
    evaluation = evaluate_router(data, router, alphas=[0.0, 1.0], seeds=range(4))
    present = [s for s in evaluation.splits if "rare" in s.oracle.per_dataset]
    assert 0 < len(present) < len(evaluation.splits)  # held out in some seeds only
    row = next(r for r in evaluation.per_benchmark()["benchmarks"] if r["benchmark"] == "rare")
    assert row["oracle"] == pytest.approx(np.mean([s.oracle.per_dataset["rare"] for s in present]))
    assert all(np.isfinite([row["router"], row["best_single"], row["delta"]]))


def test_oracle_gap_and_per_benchmark_picture(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings)
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
