"""A paid answer whose grading fails is kept: reruns grade it again and never re-ask its model.

Against the local OpenRouter-compatible server and its calibration brain; the judge is made to
answer without "Score: N" (``ServerConfig.judge_verdict``) or to fail (``fail_models``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from langchain_avengers import load_records
from langchain_avengers.calibration import ApiSettings, calibrate
from langchain_avengers.calibration.store import journal_path, latest_entries
from langchain_avengers.cli.main import main
from langchain_avengers.testing import OfflineOpenRouter
from langchain_avengers.testing._answer_key import JUDGE_MARKERS, load_answer_key

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "calibration" / "queries.jsonl"
POOL = [
    "openai/gpt-5",
    "anthropic/claude-sonnet-4.5",
    "qwen/qwen3-235b-a22b-2507",
    "mistralai/mistral-large-2512",
]
JUDGE = "google/gemini-2.5-flash"
RAMBLING = "A fine answer.\nI would give it a nine\x1b[2J out of ten, roughly." + " more" * 80


@pytest.fixture(autouse=True)
def _bundled_catalog_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVENGERS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENROUTER_API_KEY", "test-key")


def calls(server: OfflineOpenRouter) -> tuple[Counter[str], int]:
    """Answer calls per model, and judge calls, since the last reset."""
    judged = [JUDGE_MARKERS[0] in b["messages"][-1]["content"] for b in server.requests]
    answers = Counter(b["model"] for b, j in zip(server.requests, judged, strict=True) if not j)
    return answers, sum(judged)


def writing_queries(tmp_path: Path) -> Path:
    """The sample's 7 judge-graded queries."""
    lines = [
        line for line in SAMPLE.read_text().splitlines() if json.loads(line)["dataset"] == "writing"
    ]
    path = tmp_path / "writing.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def rerun(server: OfflineOpenRouter, queries: Path, verdict: str | None) -> None:
    server.reset()
    server.answer_key = load_answer_key(queries)
    server.faults.judge_verdict = verdict


@pytest.mark.parametrize("save_answers", [False, True])
def test_a_verdict_without_a_score_is_shown_and_a_rerun_asks_only_the_judge(
    server: OfflineOpenRouter,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    save_answers: bool,
) -> None:
    queries = writing_queries(tmp_path)
    out = tmp_path / "records.jsonl"
    args = ["calibrate", str(queries), "--models", ",".join(POOL), "-o", str(out)]
    args += ["--judge-model", JUDGE, "--base-url", server.base_url]
    args += ["--save-answers"] * save_answers
    rerun(server, queries, RAMBLING)
    assert main(args) == 1
    assert calls(server) == (Counter(dict.fromkeys(POOL, 7)), 28)
    err = capsys.readouterr().err
    # the verdict is in the summary, on one line, its escape sequence escaped, cut short
    shown = '"A fine answer.\\nI would give it a nine\\x1b[2J out of ten, roughly. more'
    assert f"failed 7x {POOL[0]}: judge {JUDGE}: no 'Score: N' (0-10) in its verdict, e.g. " in err
    assert shown in err
    assert "\x1b" not in err
    assert re.search(r'e\.g\. "[^"\n]{200}"\.\.\.\n', err)  # 200 characters of it
    assert "28 of them answered and are kept ungraded in the journal" in err
    assert out.read_text() == ""
    # ... and in the journal, with the paid answer whatever --save-answers says
    entries = latest_entries(journal_path(out), answers=True)
    assert len(entries) == 28
    for entry in entries.values():
        assert entry.score is None
        assert entry.answer
        assert entry.usage["cost"] > 0
        assert entry.failure is not None
        assert shown in entry.failure

    # the dry run prices the judge only
    rerun(server, queries, RAMBLING)
    assert main([*args, "--dry-run"]) == 0
    table = capsys.readouterr().out
    assert f"| {JUDGE} | judge | 28 |" in table
    assert "| answers |" not in table
    assert server.requests == []

    # a rerun with the judge still rambling: no answer call, the judge again
    rerun(server, queries, RAMBLING)
    assert main(args) == 1
    assert calls(server) == (Counter(), 28)
    assert "0 answered now" in capsys.readouterr().err

    # the judge answers again: every pair is graded from its saved answer
    rerun(server, queries, None)
    assert main(args) == 0
    assert calls(server) == (Counter(), 28)
    err = capsys.readouterr().err
    assert "28 answered now" in err
    assert "28 answers paid for in an earlier run were graded again" in err
    assert "(answers $0 + judge $" in err  # the rerun paid for no answer
    records = load_records(out)
    assert len(records) == 7
    assert all(sorted(r.records) == sorted(POOL) for r in records)
    assert all(set(r.records.values()) <= {0.1, 1.0} for r in records)
    assert all(r.usages[m].cost for r in records for m in POOL)
    saved = [e.answer is not None for e in latest_entries(journal_path(out), answers=True).values()]
    assert saved == [save_answers] * 28

    # and then nothing is asked at all
    rerun(server, queries, None)
    assert main(args) == 0
    assert calls(server) == (Counter(), 0)


def test_a_failed_judge_call_keeps_the_answer_for_the_next_run(
    server: OfflineOpenRouter, tmp_path: Path
) -> None:
    queries = writing_queries(tmp_path)
    api = ApiSettings(base_url=server.base_url, api_key="test-key", max_retries=0)
    out = tmp_path / "records.jsonl"
    rerun(server, queries, None)
    server.faults.fail_models = {JUDGE: 503}
    run = calibrate(queries, POOL[:2], out, api=api, judge_model=JUDGE, show_progress=False)
    assert (run.answered, run.failed, run.ungraded) == (0, 14, 14)
    assert calls(server)[0] == Counter(dict.fromkeys(POOL[:2], 7))
    paid = run.spend_answers
    assert paid > 0
    rerun(server, queries, None)
    run = calibrate(queries, POOL[:2], out, api=api, judge_model=JUDGE, show_progress=False)
    assert (run.answered, run.regraded, run.failed) == (14, 14, 0)
    assert calls(server) == (Counter(), 14)
    assert run.spend_answers == 0
    # the records carry the answers' own cost, billed in the first run
    costs = sum(r.usages[m].cost or 0 for r in load_records(out) for m in POOL[:2])
    assert costs == pytest.approx(paid)


def test_a_changed_prompt_asks_the_model_again(server: OfflineOpenRouter, tmp_path: Path) -> None:
    queries = writing_queries(tmp_path)
    api = ApiSettings(base_url=server.base_url, api_key="test-key", max_retries=0)
    out = tmp_path / "records.jsonl"
    rerun(server, queries, "no score here")
    calibrate(queries, POOL[:1], out, api=api, judge_model=JUDGE, show_progress=False)
    lines = [json.loads(line) for line in queries.read_text().splitlines()]
    lines[0]["query"] += " Keep it short."
    queries.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rerun(server, queries, None)
    run = calibrate(queries, POOL[:1], out, api=api, judge_model=JUDGE, show_progress=False)
    assert (run.answered, run.regraded) == (7, 6)
    assert calls(server) == (Counter({POOL[0]: 1}), 7)
