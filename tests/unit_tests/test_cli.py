"""The ``avengers`` command, end to end on the small fixture (default WordLlama embedder):
fit, route and demo.

Most runs call ``main([...])`` in-process; a few run a real subprocess, both as
``python -m langchain_avengers.cli`` and as the installed ``avengers`` console script.

The other commands and options are in ``test_cli_*.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_errors import one_error_line
from cli_runs import MODELS, ROUTER_OPTIONS

from langchain_avengers import ClusterRouter
from langchain_avengers.chat_models.costs import format_usd
from langchain_avengers.cli.main import DEMO_QUERIES, main
from langchain_avengers.routing.bundled import load_default_router
from langchain_avengers.routing.scoring import utility_weights

MODEL_LIST = "acme/tiny, acme/medium, acme/large"


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
        f"fitted 4 clusters on 90 queries, nearest_clusters 2; 3 models: {MODEL_LIST}; "
        f"wrote {out}\n"
    )
    assert captured.err == ""
    arrays = json.loads((out / "router.json").read_text())["arrays"]["file"]
    assert sorted(p.name for p in out.iterdir()) == [".router.lock", arrays, "router.json"]

    loaded = ClusterRouter.load(out)
    direct = ClusterRouter(n_clusters=4, nearest_clusters=2).fit(small_jsonl)
    assert loaded.data_fingerprint_ == direct.data_fingerprint_
    assert (loaded.n_clusters, loaded.nearest_clusters, loaded.cost_scale) == (4, 2, "linear")
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
        "--nearest-clusters",
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
    assert "nearest_clusters 1; 3 models" in capsys.readouterr().out
    params = json.loads((out / "router.json").read_text())["params"]
    keys = (
        "n_clusters",
        "nearest_clusters",
        "cost_scale",
        "scoring",
        "cluster_scales",
        "shrinkage",
        "random_state",
    )
    assert [params[k] for k in keys] == [3, 1, "log", "minmax", [1.0], 0.0, 5]


HEADER_WORDS = ["model", "expected", "accuracy", "expected", "$", "per", "call", "vs", "chosen"]


def test_route_prints_the_choice_and_every_candidate(
    router_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "What is the capital city of Chile?"
    assert main(["route", str(router_dir), query, "--alpha", "0.3"]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = ClusterRouter.load(router_dir).route(query, 0.3)
    assert out[0] == f"{expected.model}  (alpha=0.3)"
    assert out[1].split() == HEADER_WORDS
    rows = out[2 : 2 + len(expected.candidates)]
    assert [line.split()[0] for line in rows] == [c.model for c in expected.candidates]
    assert rows[0].split()[1:] == [
        f"{100 * expected.chosen.expected_accuracy:.1f}%",
        format_usd(expected.chosen.expected_cost),
        "chosen",
    ]
    assert out[2 + len(expected.candidates)].startswith("Utility = expected accuracy - ")


ROUTE_QUERY = "What is the capital of Australia?"
NEGATIVE_ZERO = re.compile(r"-0\.0*(?![0-9]*[1-9])")


@pytest.mark.parametrize("alpha", ["0", "0.2", "0.5", "1"])
def test_route_reads_plainly_at_every_alpha(alpha: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Raw utility scores read ``-3.854`` at alpha 0.2 and ``-0.000`` for every model at 0."""
    assert main(["route", "default", ROUTE_QUERY, "--alpha", alpha]) == 0
    text = capsys.readouterr().out
    assert not NEGATIVE_ZERO.search(text), text
    assert " score " not in text, "no raw score: its scale depends on alpha"
    decision = load_default_router().route(ROUTE_QUERY, float(alpha))
    rows = text.splitlines()[2 : 2 + len(decision.candidates)]
    for row, candidate in zip(rows, decision.candidates, strict=True):
        cells = row.split()
        assert cells[0] == candidate.model
        assert cells[2] == format_usd(candidate.expected_cost)  # significant digits
        assert len(cells[2].strip("$0.")) >= 3 or candidate.expected_cost == 0
    versus = [row.split()[3] for row in rows[1:]]
    if alpha == "0":
        assert all(v.startswith("+$") for v in versus), "dearer models, never -0.000"
        assert "cheapest expected cost wins" in text
    else:
        assert all(v.startswith("-") or v == "0.00" for v in versus)
        assert all(row.endswith(" pts") for row in rows[1:])
    if alpha in ("0.2", "0.5"):
        price = utility_weights(float(alpha), load_default_router().log_prices_)[1]
        assert f"Utility = expected accuracy - {price:.4g} x expected $ per call" in text
        assert "one accuracy point is worth $" in text


def test_route_explains_the_papers_minmax_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = Path(__file__).resolve().parents[1] / "fixtures" / "small.jsonl"
    out = tmp_path / "minmax"
    assert main(["fit", str(small), "-o", str(out), *ROUTER_OPTIONS, "--scoring", "minmax"]) == 0
    capsys.readouterr()
    assert main(["route", str(out), "What is 3 plus 4?", "--alpha", "0"]) == 0
    text = capsys.readouterr().out
    assert "Score (the paper's): over the 2 nearest clusters" in text
    assert not NEGATIVE_ZERO.search(text), text


def test_route_json(router_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    query = "Write a Python function that merges two dicts."
    assert main(["route", str(router_dir), query, "--alpha", "1", "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["model"] == ClusterRouter.load(router_dir).route(query, 1.0).model
    assert decision["alpha"] == 1.0
    assert {c["model"] for c in decision["candidates"]} == MODELS
    assert len(decision["clusters"]) == 2 * 3  # nearest_clusters=2 in each of the 3 k-means fits


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


# ---------------------------------------------------------------- real processes


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENROUTER_API_KEY"}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
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
        f"fitted 4 clusters on 90 queries, nearest_clusters 2; 3 models: {MODEL_LIST}; "
        f"wrote {out}\n"
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
@pytest.mark.slow
def test_console_script_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"query": "a", "records": {"m": 0.5}}\n{"query": "b", "records": {"m": 7}}\n')
    result = run([console_script(), "fit", str(data), "-o", str(tmp_path / "r")], tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert f"{data}:2: field 'records.m'" in line
    assert "less than or equal to 1" in line


def test_evaluate_plot_without_matplotlib_says_what_to_install_before_evaluating(
    small_jsonl: Path, tmp_path: Path
) -> None:
    plot = tmp_path / "frontier.png"
    script = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # as if matplotlib were not installed\n"
        "from langchain_avengers.cli.main import main\n"
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
