"""``avengers fit``'s cluster count and ``nearest_clusters`` (what it says about them) and router
options;
test sizes ``avengers evaluate`` cannot split with.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_error_line

from langchain_avengers.cli.main import main

# ---------------------------------------------------------------- cluster count and splits


def test_fit_default_cluster_count_follows_the_data(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    assert main(["fit", str(small_jsonl), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(
        "fitted 9 clusters (n_clusters=auto) on 90 queries, nearest_clusters 4;"
    )
    assert captured.err == ""
    assert json.loads((out / "router.json").read_text())["fitted"]["n_clusters_"] == 9


def test_fit_with_two_clusters_clamps_the_default_nearest_clusters(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", str(small_jsonl), "-o", str(tmp_path / "r"), "--n-clusters", "2"]) == 0
    assert capsys.readouterr().out.startswith(
        "fitted 2 clusters on 90 queries, nearest_clusters 2 (4 clamped to the clusters);"
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
        ("--nearest-clusters", "two", "expected a positive integer"),
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


def test_fit_names_the_models_and_hints_at_n_clusters(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", str(small_jsonl), "-o", str(tmp_path / "r"), "--n-clusters", "4"]) == 0
    out = capsys.readouterr().out
    assert "models:" in out
    assert main(["fit", str(small_jsonl), "-o", str(tmp_path / "r2"), "--n-clusters", "500"]) == 2
    assert "--n-clusters" in capsys.readouterr().err


def test_fit_says_when_nearest_clusters_is_clamped(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", str(small_jsonl), "-o", str(tmp_path / "r"), "--n-clusters", "3"]
    assert main([*args, "--nearest-clusters", "100", "--cluster-scales", "1"]) == 0
    assert "nearest_clusters 3 (100 clamped to the clusters); 3 models" in capsys.readouterr().out
