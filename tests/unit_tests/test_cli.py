"""The ``avengers`` command, end to end on the small fixture (default WordLlama embedder).

Most runs call ``main([...])`` in-process; a few run a real subprocess, both as
``python -m langchain_avengers.cli`` and as the installed ``avengers`` console script.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_errors import one_error_line

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.catalog import load_catalog
from langchain_avengers.cli import DEMO_QUERIES, main
from langchain_avengers.evaluation import evaluate_router
from langchain_avengers.pricing import PricedCostsWarning

MODEL_LIST = "acme/tiny, acme/medium, acme/large"

MODELS = {"acme/tiny", "acme/medium", "acme/large"}
ROUTER_OPTIONS = ["--n-clusters", "4", "--top-p", "2"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A router fitted through the CLI on small.jsonl, shared by the module's tests."""
    small = Path(__file__).resolve().parents[1] / "fixtures" / "small.jsonl"
    out = tmp_path_factory.mktemp("cli") / "router"
    assert main(["fit", str(small), "-o", str(out), *ROUTER_OPTIONS]) == 0
    return out


# ---------------------------------------------------------------- fit and route


def test_fit_writes_a_router_equal_to_the_api_one(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "router"
    assert main(["fit", str(small_jsonl), "-o", str(out), *ROUTER_OPTIONS]) == 0
    captured = capsys.readouterr()
    assert captured.out == (
        f"fitted 4 clusters on 90 queries, top_p 2; 3 models: {MODEL_LIST}; wrote {out}\n"
    )
    assert captured.err == ""
    arrays = json.loads((out / "router.json").read_text())["arrays"]["file"]
    assert sorted(p.name for p in out.iterdir()) == [".router.lock", arrays, "router.json"]

    loaded = ClusterRouter.load(out)
    direct = ClusterRouter(n_clusters=4, top_p=2).fit(small_jsonl)
    assert loaded.data_fingerprint_ == direct.data_fingerprint_
    assert (loaded.n_clusters, loaded.top_p, loaded.cost_scale) == (4, 2, "linear")
    assert (loaded.scoring, loaded.cluster_scales) == ("utility", (0.5, 1.0, 2.0))
    queries = list(DEMO_QUERIES)
    for alpha in (0.0, 0.3, 1.0):
        assert loaded.route_batch(queries, alpha) == direct.route_batch(queries, alpha)


def test_fit_options_reach_the_router(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    args = [
        "fit",
        str(small_jsonl),
        "-o",
        str(out),
        "--n-clusters",
        "3",
        "--top-p",
        "1",
        "--cost-scale",
        "log",
        "--scoring",
        "minmax",
        "--cluster-scales",
        "1",
        "--shrinkage",
        "0",
        "--random-state",
        "5",
    ]
    assert main(args) == 0
    assert "top_p 1; 3 models" in capsys.readouterr().out
    params = json.loads((out / "router.json").read_text())["params"]
    keys = (
        "n_clusters",
        "top_p",
        "cost_scale",
        "scoring",
        "cluster_scales",
        "shrinkage",
        "random_state",
    )
    assert [params[k] for k in keys] == [3, 1, "log", "minmax", [1.0], 0.0, 5]


def test_route_prints_the_choice_and_every_candidate(
    router_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "What is the capital city of Chile?"
    assert main(["route", str(router_dir), query, "--alpha", "0.3"]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = ClusterRouter.load(router_dir).route(query, 0.3)
    assert out[0] == f"{expected.model}  (alpha=0.3)"
    assert len(out) == 4
    assert [line.split()[0] for line in out[1:]] == [c.model for c in expected.candidates]


def test_route_json(router_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    query = "Write a Python function that merges two dicts."
    assert main(["route", str(router_dir), query, "--alpha", "1", "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["model"] == ClusterRouter.load(router_dir).route(query, 1.0).model
    assert decision["alpha"] == 1.0
    assert {c["model"] for c in decision["candidates"]} == MODELS
    assert len(decision["clusters"]) == 2 * 3  # top_p=2 in each of the 3 k-means fits


def test_route_restricted_to_some_models(
    router_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "route",
        str(router_dir),
        "What is 3 plus 4?",
        "--alpha",
        "1",
        "--json",
        "--models",
        "acme/tiny",
        "acme/medium",
    ]
    assert main(args) == 0
    decision = json.loads(capsys.readouterr().out)
    assert {c["model"] for c in decision["candidates"]} == {"acme/tiny", "acme/medium"}
    assert decision["model"] in {"acme/tiny", "acme/medium"}


def test_route_unknown_model(router_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", str(router_dir), "hi", "--models", "acme/huge"]) == 2
    captured = capsys.readouterr()
    assert "unknown model" in one_error_line(captured.err)
    assert "acme/huge" in captured.err
    assert captured.out == ""


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

    api = evaluate_router(small_jsonl, ClusterRouter(n_clusters=4, top_p=2), seeds=[0, 1])
    assert report["figures"] == pytest.approx(json.loads(json.dumps(api.to_dict()["figures"])))
    assert report["best_single"] == pytest.approx(api.to_dict()["best_single"])


def test_evaluate_plot_and_text_report(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "plots" / "frontier.png"
    args = [
        "evaluate",
        str(small_jsonl),
        "--seeds",
        "2",
        "--alphas",
        "0",
        "0.5",
        "1",
        "--plot",
        str(plot),
        *ROUTER_OPTIONS,
    ]
    assert main(args) == 0
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
        small_jsonl, ClusterRouter(n_clusters=4, top_p=2), alphas=[0, 0.5, 1], seeds=[0, 1]
    )
    gap = api.oracle_gap()
    assert f"{100 * gap['oracle_minus_router']:.2f} pp above the router's most accurate" in out
    bench = api.per_benchmark()
    line = next(x for x in out.splitlines() if x.startswith("per benchmark at alpha="))
    assert [b["benchmark"] for b in bench["benchmarks"]] == ["arith", "capitals", "code"]
    for b in bench["benchmarks"]:
        assert f"{b['benchmark']} {100 * b['delta']:+.2f}" in line


def evaluate_args(small_jsonl: Path, *budget: str) -> list[str]:
    return [
        "evaluate",
        str(small_jsonl),
        "--seeds",
        "2",
        "--alphas",
        "0",
        "0.5",
        "1",
        *budget,
        *ROUTER_OPTIONS,
    ]


def library_choice(small_jsonl: Path, **budget: float) -> dict:
    """What the library chooses for the evaluation the CLI runs with ``evaluate_args``."""
    router = ClusterRouter(n_clusters=4, top_p=2)
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


# ---------------------------------------------------------------- demo


def test_demo_routes_sample_queries_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--alphas", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Bundled router: 4 OpenRouter models, 60 clusters")
    for query in DEMO_QUERIES:
        assert query[:60] in out
    routed = [line for line in out.splitlines() if line.lstrip().startswith("alpha=")]
    assert len(routed) == 2 * len(DEMO_QUERIES)
    assert "Set OPENROUTER_API_KEY" in out


# ---------------------------------------------------------------- bad input


BAD_RECORDS = {
    "malformed-json": (
        ['{"query": "a", "records": {"m": 1}}', '{"query": "b", "records": '],
        ":2: not valid JSON",
    ),
    "score-out-of-range": (
        ['{"query": "a", "records": {"m": 1}}', '{"query": "b", "records": {"m": 2.5}}'],
        ":2: field 'records.m'",
    ),
    "negative-cost": (
        ['{"query": "a", "records": {"m": 1}, "usages": {"m": {"cost": -2}}}'],
        ":1: field 'usages.m.cost'",
    ),
    "nan-cost": (
        ['{"query": "a", "records": {"m": 1}, "usages": {"m": {"cost": NaN}}}'],
        ":1: field 'usages.m.cost'",
    ),
    "duplicate-key": (
        [
            '{"query": "a", "dataset": "d", "index": 1, "records": {"m": 1}}',
            '{"query": "b", "dataset": "d", "index": 1, "records": {"m": 0}}',
        ],
        ":2: duplicate (dataset, index)",
    ),
    "no-score": (['{"query": "a", "records": {}}'], ": no model has any score"),
    "empty": ([], ": no calibration records"),
}


@pytest.mark.parametrize("command", ["fit", "evaluate"])
@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_bad_records_give_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, command: str
) -> None:
    lines, expected = BAD_RECORDS[case]
    data = tmp_path / "bad.jsonl"
    data.write_text("".join(f"{line}\n" for line in lines))
    out = tmp_path / "router"
    args = ["fit", str(data), "-o", str(out)] if command == "fit" else ["evaluate", str(data)]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert f"{data}{expected}" in one_error_line(captured.err)
    assert captured.out == ""
    assert not out.exists()


def test_model_without_costs_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "nocost.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"query": f"q {i}", "records": {"a": 1, "b": 0}, "usages": {"a": {"cost": 1}}}
            )
            + "\n"
            for i in range(5)
        )
    )
    args = ["fit", str(data), "-o", str(tmp_path / "r"), "--n-clusters", "2", "--top-p", "1"]
    assert main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{data}:1: field 'usages.b.cost'" in line
    assert "neither a cost nor token counts" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["fit", "{missing}", "-o", "{tmp}/r"], "cannot read calibration records"),
        (["fit", "{small}", "-o", "{tmp}/r", "--n-clusters", "500"], "n_clusters"),
        (["route", "{tmp}/nowhere", "hello"], "not a router directory"),
    ],
)
def test_other_bad_inputs_give_one_line_and_exit_2(
    small_jsonl: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    names = {"missing": tmp_path / "missing.jsonl", "tmp": tmp_path, "small": small_jsonl}
    assert main([a.format(**names) for a in args]) == 2
    assert expected in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("damage", ["truncate", "drop-field"])
def test_route_with_a_damaged_router(
    router_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(router_dir, broken)
    meta = broken / "router.json"
    if damage == "truncate":
        meta.write_text(meta.read_text()[:150])
    else:
        data = json.loads(meta.read_text())
        del data["embedder"]["identity"]
        meta.write_text(json.dumps(data))
    assert main(["route", str(broken), "hello"]) == 2
    assert str(meta) in one_error_line(capsys.readouterr().err)


def test_argument_errors_exit_2(router_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["route", str(router_dir), "hello", "--alpha", "1.5"])
    assert info.value.code == 2
    assert "alpha must be in [0, 1]" in capsys.readouterr().err.splitlines()[-1]


# ---------------------------------------------------------------- cluster count and splits


def test_fit_default_cluster_count_follows_the_data(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    assert main(["fit", str(small_jsonl), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("fitted 9 clusters (n_clusters=auto) on 90 queries, top_p 4;")
    assert captured.err == ""
    assert json.loads((out / "router.json").read_text())["fitted"]["n_clusters_"] == 9


def test_fit_with_two_clusters_clamps_the_default_top_p(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", str(small_jsonl), "-o", str(tmp_path / "r"), "--n-clusters", "2"]) == 0
    assert capsys.readouterr().out.startswith(
        "fitted 2 clusters on 90 queries, top_p 2 (4 clamped to the clusters);"
    )


def test_too_many_clusters_is_a_one_line_warning(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", str(small_jsonl), "-o", str(tmp_path / "r"), "--n-clusters", "60"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith("avengers: warning: ") for line in err), err
    ours = [line for line in err if "calibration queries hold a median" in line]
    assert len(ours) == 1
    assert "60 cluster(s) of 90 calibration queries" in ours[0]
    assert "use n_clusters='auto' (9 clusters for 90 queries)" in ours[0]


@pytest.mark.parametrize(
    ("option", "bad", "expected"),
    [
        *[
            ("--n-clusters", b, "expected 'auto' or a positive integer")
            for b in ("0", "-3", "2.5", "x")
        ],
        *[("--shrinkage", b, "expected a number >= 0") for b in ("-1", "nan", "inf", "abc")],
        ("--top-p", "two", "expected a positive integer"),
        ("--cluster-scales", "big", "expected a positive number"),
    ],
)
def test_bad_router_options_are_argument_errors(
    small_jsonl: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    bad: str,
    expected: str,
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", str(small_jsonl), "-o", str(tmp_path / "r"), option, bad])
    assert info.value.code == 2
    assert f"{option}: {expected}, got {bad}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("test_size", "expected"),
    [
        ("0.99", "leaves 0 to fit the router and 90 to test"),
        ("0.01", "leaves 89 to fit the router and 1 to test"),
    ],
)
def test_impossible_test_size_is_our_own_message(
    small_jsonl: Path, capsys: pytest.CaptureFixture[str], test_size: str, expected: str
) -> None:
    assert main(["evaluate", str(small_jsonl), "--test-size", test_size, "--seeds", "1"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"test_size={test_size} cannot split 90 queries: it {expected}" in line
    assert "3 datasets" in line
    assert "choose a test size between 0.04 and 0.96" in line
    assert "classes" not in line  # not scikit-learn's message


# ---------------------------------------------------------------- prices and repricing


def tokens_only_file(small: Path, path: Path, drop: dict[str, str]) -> Path:
    """small.jsonl without the cost of some answers that have tokens (index -> model)."""
    rows = [json.loads(line) for line in small.read_text().splitlines()]
    for row in rows:
        if row["index"] in drop:
            del row["usages"][drop[row["index"]]]["cost"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


TWO_TOKENS_ONLY = {"arith-0": "acme/medium", "code-4": "acme/large"}


@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_tokens_only_answers_are_priced_with_a_note(
    small_jsonl: Path,
    acme_catalog: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    data = tokens_only_file(small_jsonl, tmp_path / "t.jsonl", TWO_TOKENS_ONLY)
    out = tmp_path / "r"
    args = ["fit", str(data), "-o", str(out)] if command == "fit" else ["evaluate", str(data)]
    args += [*ROUTER_OPTIONS, "--catalog", str(acme_catalog)]
    assert main(args if command == "fit" else [*args, "--seeds", "1"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"avengers: warning: {data}: priced 2 answer(s) from their tokens at list prices: "
        f"{load_catalog(acme_catalog).describe()}"
    ]
    assert "as of 2026-01-01" in err[0]
    if command == "fit":
        with pytest.warns(PricedCostsWarning):
            priced = CalibrationData.from_path(data, catalog=acme_catalog)
        direct = ClusterRouter(n_clusters=4, top_p=2).fit(priced)
        assert ClusterRouter.load(out).data_fingerprint_ == direct.data_fingerprint_


@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_tokens_of_a_model_without_price_are_one_line(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    data = tokens_only_file(small_jsonl, tmp_path / "t.jsonl", TWO_TOKENS_ONLY)
    out = tmp_path / "r"
    args = ["fit", str(data), "-o", str(out)] if command == "fit" else ["evaluate", str(data)]
    assert main(args) == 2  # "auto" is the bundled catalog here: no acme prices
    line = one_error_line(capsys.readouterr().err)
    assert f"{data}:1: field 'usages.acme/medium': model 'acme/medium'" in line
    assert "--catalog FILE" in line
    assert "avengers catalog refresh" in line
    assert not out.exists()


def test_an_answer_with_neither_cost_nor_tokens_is_one_line(
    small_jsonl: Path, acme_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tokens_only_file(small_jsonl, tmp_path / "t.jsonl", {"arith-1": "acme/large"})
    out = tmp_path / "r"
    assert main(["fit", str(data), "-o", str(out), "--catalog", str(acme_catalog)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{data}:2: field 'usages.acme/large.cost'" in line
    assert not out.exists()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reprice_writes_a_repriced_copy_and_says_what_it_did(
    small_jsonl: Path, acme_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sha256(small_jsonl)
    out = tmp_path / "repriced.jsonl"
    assert main(["reprice", str(small_jsonl), "-o", str(out), "--catalog", str(acme_catalog)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    # even-numbered queries carry tokens: 45 arith + 45 capitals + 42 code answers (tiny is
    # not measured on code-0, -10, -20); the 131 others keep their billed cost
    assert captured.err == (
        "avengers: priced 132 answer(s) from their tokens at list prices: "
        f"{load_catalog(acme_catalog).describe()}; 131 answer(s) without token counts kept "
        f"their cost; wrote {out}\n"
    )
    assert sha256(small_jsonl) == before
    first = json.loads(out.read_text().splitlines()[0])["usages"]["acme/large"]
    assert first["cost"] == pytest.approx((20 * 60 + 40 * 120) / 1e6)
    assert (
        first["billed_cost"]
        == json.loads(small_jsonl.read_text().splitlines()[0])["usages"]["acme/large"]["cost"]
    )
    assert first["priced_from"] == f"{acme_catalog} @ 2026-01-01"
    repriced = CalibrationData.from_path(out)
    assert repriced.costs[0, 2] == pytest.approx(0.006)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--strict"], "small.jsonl:2: field 'usages.acme/tiny.prompt_tokens'"),
        (["--catalog", "{tmp}/missing.json"], "cannot read catalog"),
        (["--catalog", "bundled"], "no list price in the catalog used"),
    ],
)
def test_reprice_refusals_write_nothing(
    small_jsonl: Path,
    acme_catalog: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    expected: str,
) -> None:
    out = tmp_path / "out.jsonl"
    args = [a.format(tmp=tmp_path) for a in extra]
    catalog = [] if "--catalog" in args else ["--catalog", str(acme_catalog)]
    assert main(["reprice", str(small_jsonl), "-o", str(out), *catalog, *args]) == 2
    assert expected in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_reprice_refuses_to_overwrite_its_input(
    small_jsonl: Path, acme_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "cal.jsonl"
    data.write_bytes(small_jsonl.read_bytes())
    args = ["reprice", str(data), "-o", str(data), "--catalog", str(acme_catalog)]
    assert main(args) == 2
    assert "is the input file" in one_error_line(capsys.readouterr().err)
    assert data.read_bytes() == small_jsonl.read_bytes()


# ---------------------------------------------------------------- real processes


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENROUTER_API_KEY"}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_python_m_cli_fit_and_route(small_jsonl: Path, tmp_path: Path) -> None:
    out = tmp_path / "router"
    fit = run(
        [
            sys.executable,
            "-m",
            "langchain_avengers.cli",
            "fit",
            str(small_jsonl),
            "-o",
            str(out),
            *ROUTER_OPTIONS,
        ],
        tmp_path,
    )
    assert fit.returncode == 0, fit.stderr
    assert fit.stdout == (
        f"fitted 4 clusters on 90 queries, top_p 2; 3 models: {MODEL_LIST}; wrote {out}\n"
    )

    query = "What is the capital city of Peru?"
    route = run(
        [
            sys.executable,
            "-m",
            "langchain_avengers.cli",
            "route",
            str(out),
            query,
            "--alpha",
            "0.3",
            "--json",
        ],
        tmp_path,
    )
    assert route.returncode == 0, route.stderr
    assert json.loads(route.stdout)["model"] == ClusterRouter.load(out).route(query, 0.3).model


def console_script() -> str | None:
    beside = Path(sys.executable).with_name("avengers")
    return str(beside) if beside.exists() else shutil.which("avengers")


@pytest.mark.skipif(console_script() is None, reason="the avengers console script is not installed")
def test_console_script_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"query": "a", "records": {"m": 0.5}}\n{"query": "b", "records": {"m": 7}}\n')
    result = run([console_script(), "fit", str(data), "-o", str(tmp_path / "r")], tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert f"{data}:2: field 'records.m'" in line
    assert "less than or equal to 1" in line


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


def test_fit_names_the_models_and_hints_at_n_clusters(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", str(small_jsonl), "-o", str(tmp_path / "r"), "--n-clusters", "4"]) == 0
    out = capsys.readouterr().out
    assert "models:" in out
    assert main(["fit", str(small_jsonl), "-o", str(tmp_path / "r2"), "--n-clusters", "500"]) == 2
    assert "--n-clusters" in capsys.readouterr().err


def test_evaluate_plot_without_matplotlib_says_what_to_install_before_evaluating(
    small_jsonl: Path, tmp_path: Path
) -> None:
    plot = tmp_path / "frontier.png"
    script = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # as if matplotlib were not installed\n"
        "from langchain_avengers.cli import main\n"
        f"code = main(['evaluate', {str(small_jsonl)!r}, '--plot', {str(plot)!r}])\n"
        "assert 'sklearn' not in sys.modules, 'the evaluation ran before the check'\n"
        "sys.exit(code)\n"
    )
    result = run([sys.executable, "-c", script], tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert "matplotlib" in line
    assert 'pip install "langchain-avengers[plot]"' in line
    assert not plot.exists()


def test_fit_says_when_top_p_is_clamped(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", str(small_jsonl), "-o", str(tmp_path / "r"), "--n-clusters", "3"]
    assert main([*args, "--top-p", "100", "--cluster-scales", "1"]) == 0
    assert "top_p 3 (100 clamped to the clusters); 3 models" in capsys.readouterr().out


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
