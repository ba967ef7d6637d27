"""``avengers calibrate --dry-run``, ``regrade`` and ``merge`` and every refusal, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_error_line

from langchain_avengers import load_records
from langchain_avengers.calibration import Query, load_queries
from langchain_avengers.calibration.store import Journal, JournalEntry, journal_path
from langchain_avengers.cli.main import main

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "calibration" / "queries.jsonl"
POOL = "openai/gpt-5,qwen/qwen3-235b-a22b-2507"


def test_dry_run_prints_the_estimate_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "records.jsonl"
    args = ["calibrate", str(SAMPLE), "--models", POOL, "-o", str(out), "--dry-run"]
    assert main([*args, "--judge-model", "google/gemini-2.5-flash"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("100 pairs, 0 already done, 100 to run.")
    assert "| google/gemini-2.5-flash | judge | 14 |" in printed
    assert "Estimated total $" in printed
    assert list(tmp_path.iterdir()) == []
    assert main([*args, "--judge-model", "google/gemini-2.5-flash", "--shard", "0/2"]) == 0
    assert "pairs, 0 already done" in capsys.readouterr().out


def test_dry_run_names_the_nearest_ids_of_a_model_the_catalog_does_not_know(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "records.jsonl"
    args = ["calibrate", str(SAMPLE), "--models", "openai/gpt5", "-o", str(out), "--dry-run"]
    assert main([*args, "--judge-model", "google/gemini-2.5-flash"]) == 0
    printed = capsys.readouterr().out
    assert "No list price (left out of the totals): openai/gpt5." in printed
    assert "Unknown to the catalog: openai/gpt5 (nearest known: openai/gpt-5, " in printed
    assert "google/gemini-2.5-flash (nearest" not in printed


def test_a_bad_query_file_is_one_line_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "q", "reference": 1, "grader": "numeric"}\n{"query": "x"}\n')
    out = tmp_path / "records.jsonl"
    code = main(["calibrate", str(queries), "--models", POOL, "-o", str(out)])
    assert code == 2
    assert one_error_line(capsys.readouterr().err) == (
        f"avengers: error: {queries}:2: field 'grader' is required"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.jsonl"]


@pytest.mark.parametrize(
    ("extra", "env", "expected"),
    [
        ([], {}, "no API key: set $OPENROUTER_API_KEY"),
        (["--api-key-env", "MY_KEY"], {}, "no API key: set $MY_KEY"),
        (["--shard", "2/2"], {"OPENROUTER_API_KEY": "k"}, "shard: expected 0 <= K < N"),
        (
            ["--max-spend", "1", "--judge-model", "acme/no-such-model"],
            {"OPENROUTER_API_KEY": "k"},
            "--max-spend needs list prices, and the catalog has none for acme/no-such-model",
        ),
        (["--judge-model", "x/y"], {"OPENROUTER_API_KEY": "k"}, "exists but has no journal"),
    ],
)
def test_refusals_before_any_call(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "records.jsonl"
    if "exists but" in expected:
        out.write_text("mine\n")
    code = main(["calibrate", str(SAMPLE), "--models", POOL, "-o", str(out), *extra])
    assert code == 2
    assert expected in one_error_line(capsys.readouterr().err)
    assert not journal_path(out).exists()
    assert not out.exists() or out.read_text() == "mine\n"


def test_bad_arguments_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--models", " , "], ["--models", POOL, "--concurrency", "0"]):
        with pytest.raises(SystemExit) as info:
            main(["calibrate", str(SAMPLE), "-o", "x.jsonl", *bad])
        assert info.value.code == 2
    assert "expected" in capsys.readouterr().err


def journal_with_answers(out: Path, queries: list[Query], answers: dict[str, str]) -> None:
    with Journal(journal_path(out)) as journal:
        for query in queries:
            journal.append(
                JournalEntry(
                    key=query.key,
                    model="openai/gpt-5",
                    prompt_fp=query.prompt_fingerprint,
                    grading_fp=query.grading_fingerprint,
                    score=0.0,
                    usage={"cost": 0.01},
                    answer=answers[query.query],
                )
            )


def test_regrade_rescores_saved_answers_without_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"query": "Half of 9?", "reference": 4.5, "grader": "numeric", "index": 1},
        {"query": "Capital of Peru?", "reference": "Lima", "grader": "exact", "index": 2},
    ]
    first = tmp_path / "q1.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "records.jsonl"
    answers = {"Half of 9?": "4.6", "Capital of Peru?": "Lima"}
    journal_with_answers(out, load_queries(first), answers)
    rows[0]["grader"] = {"name": "numeric", "tolerance": 0.2}  # the grader changed since
    second = tmp_path / "q2.jsonl"
    second.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["regrade", str(second), "-o", str(out)]) == 0
    assert "2 pairs re-scored (2 scores changed)" in capsys.readouterr().err
    records = load_records(out)
    assert [r.records["openai/gpt-5"] for r in records] == [1.0, 1.0]
    assert records[0].usages["openai/gpt-5"].cost == 0.01


def test_regrade_needs_leave_to_call_the_judge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    row = {"query": "Say hi.", "grader": {"name": "judge", "rubric": "greets"}, "index": 1}
    first = tmp_path / "q1.jsonl"
    first.write_text(json.dumps(row) + "\n")
    out = tmp_path / "records.jsonl"
    journal_with_answers(out, load_queries(first), {"Say hi.": "Hi!"})
    row["grader"] = {"name": "judge", "rubric": "greets warmly"}
    second = tmp_path / "q2.jsonl"
    second.write_text(json.dumps(row) + "\n")
    args = ["regrade", str(second), "-o", str(out), "--judge-model", "google/gemini-2.5-flash"]
    assert main(args) == 2
    assert "1 judge-graded pairs need re-judging (rubric or reference changed; query lines 1)" in (
        one_error_line(capsys.readouterr().err)
    )
    assert not out.exists()
    unchanged = ["regrade", str(first), "-o", str(out), "--judge-model", "google/gemini-2.5-flash"]
    assert main(unchanged) == 0
    assert "1 judge-graded pairs kept as they were" in capsys.readouterr().err


def test_merge_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = {"query": "q", "dataset": "d", "index": 1, "records": {"m": 1.0}, "usages": {}}
    a = tmp_path / "a.jsonl"
    a.write_text(json.dumps(row) + "\n")
    b = tmp_path / "b.jsonl"
    b.write_text(json.dumps({**row, "records": {"n": 0.0}}) + "\n")
    out = tmp_path / "all.jsonl"
    assert main(["merge", str(a), str(b), "-o", str(out)]) == 0
    assert capsys.readouterr().out == (
        f"merged 2 files: 1 queries, 2 pairs (0 duplicates kept once); wrote {out}\n"
    )
    assert main(["merge", str(a), str(tmp_path / "missing.jsonl"), "-o", str(out)]) == 2
    assert "missing.jsonl: cannot read calibration records" in capsys.readouterr().err
