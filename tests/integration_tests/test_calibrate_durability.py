"""Nothing finished is lost: ``kill -9`` and Ctrl-C midway, then resume.

Also here because it needs a loopback socket: a sandboxed answer cannot reach a listener.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from langchain_avengers import load_records
from langchain_avengers.calibration import load_queries
from langchain_avengers.calibration.sandbox import run_python_tests
from langchain_avengers.calibration.store import journal_path, read_journal
from langchain_avengers.cli.main import main
from langchain_avengers.testing import OfflineOpenRouter
from langchain_avengers.testing._answer_key import JUDGE_MARKERS, load_answer_key

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "calibration" / "queries.jsonl"
POOL = "openai/gpt-5,anthropic/claude-sonnet-4.5,qwen/qwen3-235b-a22b-2507"


@pytest.fixture
def queries(tmp_path: Path) -> Path:
    """25 sample queries without judge or sandbox: 75 pairs."""
    keep = {"trivia", "science-mc", "formats"}
    lines = [x for x in SAMPLE.read_text().splitlines() if json.loads(x)["dataset"] in keep]
    path = tmp_path / "queries.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OPENROUTER_API_KEY": "test-key",
        "AVENGERS_CACHE_DIR": str(tmp_path / "cache"),
    }


def start_midway(
    server: OfflineOpenRouter, queries: Path, out: Path, env: dict[str, str], lines: int
) -> subprocess.Popen:
    """Run ``avengers calibrate`` on ``queries`` in a subprocess against a slowed-down
    ``server``; return it, still running, once its journal holds ``lines`` pairs."""
    server.answer_key = load_answer_key(queries)
    server.faults.delay_s = 0.05
    args = [sys.executable, "-m", "langchain_avengers.cli", "calibrate", str(queries)]
    args += ["--models", POOL, "-o", str(out), "--base-url", server.base_url]
    process = subprocess.Popen(
        [*args, "--concurrency", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal = journal_path(out)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_bytes().count(b"\n") >= lines:
            return process
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    pytest.fail("the run journalled too little in 30 s")


def journalled(out: Path) -> list[tuple[str, str]]:
    return [(e.key, e.model) for e in read_journal(journal_path(out))]


def asked(server: OfflineOpenRouter, queries: Path) -> list[tuple[str, str]]:
    """(query key, model) of every answer request the server got."""
    keys = {q.query: q.key for q in load_queries(queries)}
    return [
        (keys[b["messages"][-1]["content"]], b["model"])
        for b in server.requests
        if JUDGE_MARKERS[0] not in b["messages"][-1]["content"]
    ]


@pytest.mark.slow
def test_sigkill_midway_then_resume_loses_and_repeats_nothing(
    server: OfflineOpenRouter,
    queries: Path,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "records.jsonl"
    process = start_midway(server, queries, out, env, 10)
    process.kill()  # SIGKILL: no handler, no cleanup
    process.wait(timeout=10)
    before = journalled(out)
    assert len(before) >= 10
    assert len(set(before)) == len(before)
    server.reset()
    server.answer_key = load_answer_key(queries)
    monkeypatch.setenv("OPENROUTER_API_KEY", "test-key")
    resume = ["calibrate", str(queries), "--models", POOL, "-o", str(out)]
    assert main([*resume, "--base-url", server.base_url]) == 0
    after = journalled(out)
    assert len(after) == len(set(after)) == 75  # no duplicate, no loss
    second = asked(server, queries)
    assert not set(second) & set(before)  # finished pairs were not asked again
    assert sorted(second) == sorted(set(after) - set(before))
    assert sum(len(r.records) for r in load_records(out)) == 75


@pytest.mark.slow
def test_ctrl_c_finishes_calls_in_flight_writes_the_records_and_exits_130(
    server: OfflineOpenRouter, queries: Path, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "records.jsonl"
    process = start_midway(server, queries, out, env, 6)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted: every finished pair is kept" in err
    kept = journalled(out)
    assert 6 <= len(kept) < 75
    assert sum(len(r.records) for r in load_records(out)) == len(kept)
    assert len(server.requests) == len(kept)  # every call sent was answered and journalled


def test_sandboxed_code_cannot_reach_a_listener_on_loopback() -> None:
    """A connection the kernel completed would wait in the backlog: there is none."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        code = f"import socket\ndef call():\n    socket.create_connection(('127.0.0.1', {port}))"
        result = run_python_tests(code, ["call()"], timeout=5)
        raw = run_python_tests("import _socket\n_socket.socket()", ["pass"])
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert result.passed == 0
    assert "network access" in str(result.error)
    assert "network access (socket.__new__)" in str(raw.error)
