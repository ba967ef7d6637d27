"""``avengers evaluate``: the JSON report, plots and text report, budgets (``--target-cost``,
``--min-accuracy``) and numbers it refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_error_line
from cli_runs import MODELS, ROUTER_OPTIONS

from langchain_avengers import ClusterRouter
from langchain_avengers.cli.main import main
from langchain_avengers.evaluation.evaluate import evaluate_router

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- evaluate


def test_evaluate_json_is_exactly_one_object(
    small_jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(small_jsonl), "--seeds", "2", "--json", *ROUTER_OPTIONS]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # the whole of stdout is one JSON document
    assert isinstance(report, dict)
    assert captured.out.lstrip().startswith("{")
    assert captured.err == ""

    assert report["data"] == str(small_jsonl)
    assert set(report["figures"]) == {"acc_at_best_cost", "cost_to_match", "cost_to_95", "aiq"}
    assert set(report["best_single"]) == {"model", "accuracy", "cost"}
    assert set(report["oracle"]) == {"accuracy", "cost"}
    assert report["best_single"]["model"] in MODELS
    assert report["seeds"] == [0, 1]
    assert len(report["curve"]) == 51
    assert {"alpha", "accuracy", "cost"} <= set(report["curve"][0])
    fractions = [
        report["best_single"]["accuracy"],
        report["oracle"]["accuracy"],
        report["figures"]["aiq"],
        *(p["accuracy"] for p in report["curve"]),
    ]
    assert all(0.0 <= f <= 1.0 for f in fractions)

    api = evaluate_router(
        small_jsonl, ClusterRouter(n_clusters=4, nearest_clusters=2), seeds=[0, 1]
    )
    assert report["figures"] == pytest.approx(json.loads(json.dumps(api.to_dict()["figures"])))
    assert report["best_single"] == pytest.approx(api.to_dict()["best_single"])


def evaluate_args(small_jsonl: Path, *extra: str) -> list[str]:
    return [
        "evaluate",
        str(small_jsonl),
        "--seeds",
        "2",
        "--alphas",
        "0",
        "0.5",
        "1",
        *extra,
        *ROUTER_OPTIONS,
    ]


@pytest.mark.slow
def test_evaluate_plot_and_text_report(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "plots" / "frontier.png"
    assert main(evaluate_args(small_jsonl, "--plot", str(plot))) == 0
    captured = capsys.readouterr()
    out = captured.out
    usage = tmp_path / "plots" / "frontier_usage.png"
    for path in (plot, usage):
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert f"avengers: wrote {plot} and {usage}" in captured.err
    assert "| acme/large |" in out
    assert "| router α=0.5 |" in out
    for figure in ("acc@best-cost", "cost-to-match", "cost-to-95%", "AIQ"):
        assert figure in out
    api = evaluate_router(
        small_jsonl,
        ClusterRouter(n_clusters=4, nearest_clusters=2),
        alphas=[0, 0.5, 1],
        seeds=[0, 1],
    )
    gap = api.oracle_gap()
    assert f"{100 * gap['oracle_minus_router']:.2f} pp above the router's most accurate" in out
    bench = api.per_benchmark()
    line = next(x for x in out.splitlines() if x.startswith("per benchmark at alpha="))
    assert [b["benchmark"] for b in bench["benchmarks"]] == ["arith", "capitals", "code"]
    for b in bench["benchmarks"]:
        assert f"{b['benchmark']} {100 * b['delta']:+.2f}" in line


def library_choice(small_jsonl: Path, **budget: float) -> dict:
    """What the library chooses for the evaluation the CLI runs with ``evaluate_args``."""
    router = ClusterRouter(n_clusters=4, nearest_clusters=2)
    evaluation = evaluate_router(small_jsonl, router, alphas=[0, 0.5, 1], seeds=range(2))
    return evaluation.choose_alpha(**budget).__dict__


def test_evaluate_budget_choice(small_jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*evaluate_args(small_jsonl, "--min-accuracy", "0.5"), "--json"]) == 0
    choice = json.loads(capsys.readouterr().out)["budget_choice"]
    assert choice["accuracy"] >= choice["accuracy_bound"] >= 0.5
    asked = {"target_cost": None, "min_accuracy": 0.5}
    expected = {**asked, **library_choice(small_jsonl, min_accuracy=0.5)}
    assert choice == pytest.approx(expected)


def test_evaluate_target_cost_line_and_json(
    small_jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = library_choice(small_jsonl, target_cost=20.0)
    assert expected["cost_bound"] <= 20.0
    assert main(evaluate_args(small_jsonl, "--target-cost", "20")) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (
        f"budget (at most $20 per 1,000 queries): alpha={expected['alpha']:g}: cost "
        f"${expected['cost']:.4g} per 1,000 queries expected, at most "
        f"${expected['cost_bound']:.4g} with 90% confidence; accuracy "
        f"{expected['accuracy']:.1%} expected, at least {expected['accuracy_bound']:.1%} with "
        f"90% confidence (batches of {expected['n_test']} queries; 2 seeds x 1,000 bootstrap "
        "resamples)"
    )
    args = [*evaluate_args(small_jsonl, "--target-cost", "20", "--confidence", "0.99"), "--json"]
    assert main(args) == 0
    choice = json.loads(capsys.readouterr().out)["budget_choice"]
    assert (choice["target_cost"], choice["confidence"]) == (20.0, 0.99)
    assert choice["cost"] <= choice["cost_bound"] <= 20.0
    assert choice["alpha"] <= expected["alpha"]  # more confidence never buys a dearer alpha
    assert set(choice) == {"target_cost", "min_accuracy", *expected}


def test_evaluate_impossible_budget(small_jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "evaluate",
        str(small_jsonl),
        "--seeds",
        "1",
        "--alphas",
        "0",
        "1",
        "--target-cost",
        "1e-9",
        *ROUTER_OPTIONS,
    ]
    assert main(args) == 2
    assert "target_cost" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--test-size", "1.5"], "--test-size"),
        (["--target-cost", "-1"], "--target-cost"),
        (["--min-accuracy", "1.2"], "--min-accuracy"),
        (["--confidence", "1"], "--confidence"),
        (["--confidence", "0.3"], "--confidence"),
    ],
)
def test_evaluate_rejects_nonsense_numbers(
    small_jsonl: Path, capsys: pytest.CaptureFixture[str], argv: list[str], complaint: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(small_jsonl), *argv])
    assert info.value.code == 2
    assert complaint in capsys.readouterr().err


def test_plot_paths_must_be_png(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(small_jsonl), "--plot", str(tmp_path / "plot.txt")])
    assert info.value.code == 2
    assert "--plot: expected a .png path (the plots are PNG images), got" in (
        capsys.readouterr().err
    )
    assert list(tmp_path.iterdir()) == []
