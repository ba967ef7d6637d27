"""Prices in the CLI: answers with tokens but no cost are priced from the catalog (with a note),
what cannot be priced is one error line, and ``avengers reprice``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cli_errors import one_error_line
from cli_runs import ROUTER_OPTIONS

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.catalog.base import load_catalog
from langchain_avengers.cli.main import main
from langchain_avengers.records.pricing import PricedCostsWarning

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
        direct = ClusterRouter(n_clusters=4, nearest_clusters=2).fit(priced)
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
