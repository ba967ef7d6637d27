"""What the ``avengers`` command prints: --version, the bundled router by name, strict JSON,
escaped model ids, --strict records, skipped seeds, and a reader of stdout that goes away."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_errors import one_error_line

from langchain_avengers import CalibrationData, __version__, load_records
from langchain_avengers.cli.main import EXIT_STDOUT_CLOSED, main
from langchain_avengers.evaluation.evaluate import split_indices
from langchain_avengers.routing.bundled import load_default_router

ROUTER_OPTIONS = ["--n-clusters", "3", "--nearest-clusters", "1"]
ESCAPE = "\x1b[2J\x1b]0;pwned\x07"
"""Clear the screen and set the window title: what a hostile model id could do raw."""


def no_nan_constants(name: str) -> object:
    msg = f"not JSON: {name}"
    raise AssertionError(msg)


def lucky_jsonl(small_jsonl: Path, tmp_path: Path) -> Path:
    """small.jsonl plus acme/lucky, measured on the first query only (the trial's file)."""
    rows = [json.loads(line) for line in small_jsonl.read_text().splitlines()]
    rows[0]["records"]["acme/lucky"] = 1.0
    rows[0]["usages"]["acme/lucky"] = {"cost": 0.0003}
    path = tmp_path / "lucky.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------- version, bundled router


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"avengers {__version__}\n"


def test_route_default_uses_the_bundled_router(capsys: pytest.CaptureFixture[str]) -> None:
    query = "Prove that sqrt(2) is irrational"
    assert main(["route", "default", query, "--alpha", "0.7", "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    expected = load_default_router().route(query, 0.7)
    assert decision["model"] == expected.model
    assert [c["model"] for c in decision["candidates"]] == [c.model for c in expected.candidates]
    with pytest.raises(SystemExit):
        main(["route", "--help"])
    assert "`default` for the bundled router" in " ".join(capsys.readouterr().out.split())


def test_a_directory_named_default_is_reached_as_dot_slash_default(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["fit", str(small_jsonl), "-o", "default", *ROUTER_OPTIONS]) == 0
    capsys.readouterr()
    assert main(["route", "./default", "What is 2 plus 2?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"].startswith("acme/")
    assert main(["route", "default", "What is 2 plus 2?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"].startswith(("google/", "meta-", "mistral"))


# ---------------------------------------------------------------- strict JSON, safe text


def test_evaluate_json_is_strict_json_with_null_for_no_answer(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # acme/lucky is measured on two queries, both in seed 0's training part: it has no
    # held-out answer, so its accuracy and cost are NaN, which JSON has no word for
    train, _ = split_indices(CalibrationData.from_path(small_jsonl), seed=0)
    rows = [json.loads(line) for line in small_jsonl.read_text().splitlines()]
    for i in train[:2]:
        rows[i]["records"]["acme/lucky"] = 1.0
        rows[i]["usages"]["acme/lucky"] = {"cost": 0.0003}
    data = tmp_path / "two.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(data), "--seeds", "1", "--json", *ROUTER_OPTIONS]) == 0
    report = json.loads(capsys.readouterr().out, parse_constant=no_nan_constants)
    lucky = next(s for s in report["singles"] if s["model"] == "acme/lucky")
    assert lucky == {"model": "acme/lucky", "accuracy": None, "cost": None, "coverage": 0.0}


def test_evaluate_reports_skipped_seeds_in_json_and_text(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = lucky_jsonl(small_jsonl, tmp_path)
    assert main(["evaluate", str(data), "--seeds", "4", "--json", *ROUTER_OPTIONS]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out, parse_constant=no_nan_constants)
    skipped = [s["seed"] for s in report["skipped_seeds"]]
    assert skipped  # seeds whose training part lacks acme/lucky's only score
    assert sorted(skipped + report["seeds"]) == [0, 1, 2, 3]
    warnings = captured.err.splitlines()
    assert all(line.startswith("avengers: warning: ") for line in warnings)
    assert any(f"{len(skipped)} of 4 seeds skipped" in line for line in warnings)

    assert main(["evaluate", str(data), "--seeds", "4", "--alphas", "0", "1", *ROUTER_OPTIONS]) == 0
    out = capsys.readouterr().out
    assert f"{len(skipped)} of 4 seeds skipped, figures are over the other" in out
    assert "have no score in the 63 training queries of this split" in out


def test_model_ids_with_escape_codes_are_printed_escaped(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = f"acme/evil{ESCAPE}"
    rows = [json.loads(line) for line in small_jsonl.read_text().splitlines()]
    for row in rows:
        row["records"] = {evil if m == "acme/large" else m: s for m, s in row["records"].items()}
        row["usages"] = {evil if m == "acme/large" else m: u for m, u in row["usages"].items()}
    data = tmp_path / "evil.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shown = "acme/evil\\x1b[2J\\x1b]0;pwned\\x07"

    # a router with such an id is never written (load would refuse it): one escaped error
    # line naming the data file, said before fitting (not by save, after the k-means fits)
    assert main(["fit", str(data), "-o", str(tmp_path / "r"), *ROUTER_OPTIONS]) == 2
    refused = one_error_line(capsys.readouterr().err)
    assert f"{data}: model id 'acme/evil" in refused
    assert "holds control or invisible characters" in refused
    assert shown in refused
    assert not (tmp_path / "r").exists()
    assert main(["evaluate", str(data), "--seeds", "1", "--alphas", "1", *ROUTER_OPTIONS]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err
    assert "\x07" not in captured.out + captured.err
    assert f"| {shown} |" in captured.out  # evaluate's table
    assert (
        main(["evaluate", str(data), "--seeds", "1", "--alphas", "1", "--json", *ROUTER_OPTIONS])
        == 0
    )
    out = capsys.readouterr().out
    assert "\x1b" not in out  # JSON escapes it as \u001b and keeps the real id
    assert evil in [m["model"] for m in json.loads(out)["singles"]]


def test_catalog_errors_escape_what_the_user_typed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "show", f"acme/x{ESCAPE}", "--catalog", "bundled"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "\x1b" not in line
    assert "\\x1b[2J" in line


# ---------------------------------------------------------------- records: --strict


@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_unknown_record_fields_warn_or_fail_under_strict(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    rows = [json.loads(line) for line in small_jsonl.read_text().splitlines()]
    del rows[4]["usages"]  # the trial's typo, which loses every cost of the line:
    rows[4].update(records={"acme/medium": 1.0}, usage={"acme/medium": {"cost": 0.0003}})
    data = tmp_path / "typo.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = ["-o", str(tmp_path / "r")] if command == "fit" else ["--seeds", "1", "--json"]

    assert main([command, str(data), *out, *ROUTER_OPTIONS, "--strict"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"avengers: error: {data}:5: unknown field 'usage' (did you mean 'usages'?); a "
        "record's fields are query, records, usages, dataset, index, propensities (strict)"
    )
    assert not (tmp_path / "r").exists()

    assert main([command, str(data), *out, *ROUTER_OPTIONS]) == 2  # the cost is then missing
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        f"avengers: warning: {data}:5: unknown field 'usage' (did you mean 'usages'?); a "
        "record's fields are query, records, usages, dataset, index, propensities; "
        "ignored (on this line)"
    )
    assert f"{data}:5: field 'usages.acme/medium.cost'" in one_error_line(err[1])


def test_fields_inside_a_usage_stay_allowed_under_strict(
    small_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [json.loads(line) for line in small_jsonl.read_text().splitlines()]
    for row in rows:
        for usage in row["usages"].values():
            usage.update(latency_s=1.5, model="acme/x", judge_cost=0.0)
    data = tmp_path / "runner.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["fit", str(data), "-o", str(tmp_path / "r"), *ROUTER_OPTIONS, "--strict"]) == 0
    assert capsys.readouterr().err == ""
    assert load_records(data, strict=True)[0].usages["acme/tiny"].model_extra["latency_s"] == 1.5


# ---------------------------------------------------------------- a reader that goes away


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "langchain_avengers.cli", *args]


@pytest.mark.slow
def test_a_closed_stdout_ends_quietly_with_the_sigpipe_status(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte is written
    try:
        result = subprocess.run(
            cli_command("catalog", "list", "--catalog", "bundled"),
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == b""
    assert result.returncode == EXIT_STDOUT_CLOSED == 141


@pytest.mark.skipif(shutil.which("head") is None, reason="needs head(1)")
@pytest.mark.parametrize(
    "args", [("catalog", "list", "--catalog", "bundled", "--json"), ("demo",)], ids=str
)
@pytest.mark.slow
def test_piped_into_head_ends_quietly(tmp_path: Path, args: tuple[str, ...]) -> None:
    read_end, write_end = os.pipe()
    cli = subprocess.Popen(cli_command(*args), stdout=write_end, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-1"], stdin=read_end, stdout=subprocess.PIPE)
    os.close(read_end)
    os.close(write_end)
    first_line = head.communicate(timeout=120)[0]
    _, err = cli.communicate(timeout=120)
    assert first_line.decode().startswith(("{", "Bundled router"))
    assert err == b""
    assert cli.returncode in (0, EXIT_STDOUT_CLOSED)  # 0 when all fitted in the pipe
