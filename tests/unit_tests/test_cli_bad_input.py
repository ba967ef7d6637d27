"""Bad calibration records and other bad inputs: one ``avengers: error:`` line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_error_line

from langchain_avengers.cli.main import main

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
    args = [
        "fit",
        str(data),
        "-o",
        str(tmp_path / "r"),
        "--n-clusters",
        "2",
        "--nearest-clusters",
        "1",
    ]
    assert main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{data}:1: field 'usages.b.cost'" in line
    assert "neither a cost nor token counts" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["fit", "{missing}", "-o", "{tmp}/r"], "cannot read calibration records"),
        (["fit", "{small}", "-o", "{tmp}/r", "--n-clusters", "500"], "n_clusters"),
        (["route", "{tmp}/nowhere", "hello"], "not a router folder"),
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
