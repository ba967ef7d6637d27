"""Graders: what each one extracts and normalises, the python sandbox's limits, the judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langchain_avengers.calibration import (
    extract_choice,
    extract_code,
    extract_number,
    grade,
    load_queries,
    normalise_text,
    parse_judge_score,
)
from langchain_avengers.calibration.graders import (
    JUDGE_ANSWER_LIMIT_BYTES,
    judge_messages,
    judge_prompt_bytes_bound,
)
from langchain_avengers.calibration.queries import Query
from langchain_avengers.calibration.sandbox import SandboxError, run_python_tests
from langchain_avengers.testing._answer_key import load_answer_key

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "calibration" / "queries.jsonl"


def query(reference: object, grader: object, text: str = "q") -> Query:
    return Query.model_validate({"query": text, "reference": reference, "grader": grader})


# ---------------------------------------------------------------------- exact


def test_exact_normalises_case_punctuation_articles_and_spaces() -> None:
    assert normalise_text("  The  **Pacific**   Ocean! ") == "pacific ocean"
    assert normalise_text("ＣＯ₂") == "co2"
    capital = query("Canberra", "exact")
    assert grade(capital, "canberra.") == 1.0
    assert grade(capital, "**Canberra**") == 1.0
    assert grade(capital, "The capital is Canberra.") == 0.0
    assert grade(query(["Jane Austen", "Austen"], "exact"), "Austen") == 1.0


def test_exact_contains_accepts_the_reference_as_whole_words_only() -> None:
    river = query("Amazon", {"name": "exact", "contains": True})
    assert grade(river, "It is the Amazon River.") == 1.0
    assert grade(river, "Amazonia") == 0.0


# ---------------------------------------------------------------------- choice


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B", "B"),
        ("(C)", "C"),
        ("Answer: (B)", "B"),
        ("answer: d.", "D"),
        ("**B**", "B"),
        ("The answer is B.", "B"),
        ("The correct answer is option C because electrons are negative.", "C"),
        ("I first thought (A), but the final answer is D.", "D"),
        ("Final answer: **C**", "C"),
        ("$\\boxed{A}$", "A"),
        ("Dolphins breathe air.\nB) dolphin", "B"),
        ("The answer is a dolphin.", None),
        ("A shark is a fish and a trout is a fish.", None),
        ("(A) shark, (B) dolphin", None),
        ("", None),
    ],
)
def test_choice_extracts_the_final_letter(answer: str, letter: str | None) -> None:
    assert extract_choice(answer, "ABCD") == letter


def test_choice_grades_against_the_reference_letter() -> None:
    mammal = query("B", {"name": "choice", "choices": "ABCD"})
    assert grade(mammal, "The answer is (B).") == 1.0
    assert grade(mammal, "The answer is (A).") == 0.0
    assert grade(mammal, "I do not know") == 0.0
    assert grade(query("E", "choice"), "E") == 1.0  # default letters A-J


# ---------------------------------------------------------------------- numeric


@pytest.mark.parametrize(
    ("answer", "found"),
    [
        ("Answer: 42", (42.0, False)),
        ("17 x 23 = 391", (391.0, False)),
        ("The total is 1,048,576.", (1048576.0, False)),
        ("It drops to -3.5 degrees", (-3.5, False)),
        ("−7", (-7.0, False)),
        ("about 45%", (45.0, True)),
        ("2.5e-3", (0.0025, False)),
        ("3/4 of it", (0.75, False)),
        ("so \\boxed{\\frac{1}{8}} and then 9 more", (0.125, False)),
        ("On 2024-01-01 it was", (1.0, False)),
        ("no number here", None),
    ],
)
def test_numeric_reads_the_final_number(answer: str, found: tuple[float, bool] | None) -> None:
    assert extract_number(answer) == found


def test_numeric_tolerances_and_percentages() -> None:
    exact = query(391, "numeric")
    assert grade(exact, "The product is 391.") == 1.0
    assert grade(exact, "390") == 0.0
    assert grade(query(28.27, {"name": "numeric", "tolerance": 0.01}), "28.274") == 1.0
    assert grade(query(1000, {"name": "numeric", "rel_tolerance": 0.01}), "1,009") == 1.0
    assert grade(query(1000, {"name": "numeric", "rel_tolerance": 0.01}), "1,011") == 0.0
    assert grade(query(0.45, "numeric"), "45%") == 1.0
    assert grade(query(45, "numeric"), "45%") == 1.0
    assert grade(query("1,200", "numeric"), "1200") == 1.0


# ---------------------------------------------------------------------- regex


def test_regex_searches_with_flags() -> None:
    email = {"name": "regex", "pattern": r"\bada@example\.org\b", "flags": ["IGNORECASE"]}
    assert grade(query(None, email), "Use ADA@example.org please") == 1.0
    assert grade(query(None, {**email, "flags": []}), "ADA@example.org") == 0.0
    multiline = {"name": "regex", "pattern": "^done$", "flags": ["MULTILINE"]}
    assert grade(query(None, multiline), "step 1\ndone\n") == 1.0


# ---------------------------------------------------------------------- python


def test_code_comes_from_the_defining_python_block() -> None:
    answer = (
        "Here:\n```python\ndef f(x):\n    return x * 2\n```\nUsage:\n```python\nprint(f(2))\n```"
    )
    assert extract_code(answer) == "def f(x):\n    return x * 2\n"
    assert extract_code("```\nclass A:\n    pass\n```") == "class A:\n    pass\n"
    assert extract_code("def g():\n    return 1") == "def g():\n    return 1"


def test_python_scores_all_or_nothing_or_the_fraction() -> None:
    tests = ["assert f(2) == 4", "assert f(3) == 9", "assert f(0) == 1"]
    code = "```python\ndef f(x):\n    return x * x\n```"
    assert grade(query(None, {"name": "python", "tests": tests}), code) == 0.0
    partial = {"name": "python", "tests": tests, "partial_credit": True}
    assert grade(query(None, partial), code) == pytest.approx(2 / 3)
    assert grade(query(None, {"name": "python", "tests": tests[:2]}), code) == 1.0
    assert grade(query(None, {"name": "python", "tests": tests[:2]}), "def f(:") == 0.0


def test_sandbox_times_out() -> None:
    result = run_python_tests("while True:\n    pass", ["pass"], timeout=1)
    assert (result.passed, result.error) == (0, "timed out after 1 s")


def test_a_sandbox_that_cannot_start_is_an_error_not_a_zero() -> None:
    with pytest.raises(SandboxError, match="before running the code"):
        run_python_tests("def f():\n    return 1", ["assert f() == 1"], timeout=0.001)


def test_sandbox_limits_memory() -> None:
    code = "blob = bytearray(300 * 1024 * 1024)"
    assert run_python_tests(code, ["assert len(blob)"], memory_mb=1024).passed == 1
    limited = run_python_tests(code, ["assert len(blob)"], memory_mb=128)
    assert limited.passed == 0
    assert "MemoryError" in str(limited.error)


@pytest.mark.parametrize(
    ("code", "refused"),
    [
        ("import subprocess\nsubprocess.run(['true'])", "subprocess.Popen"),
        ("import os\nos.system('true')", "os.system"),
        ("import os\nos.execv('/bin/true', ['true'])", "os.exec"),
        ("import os\nos.fork()", "os.fork"),
        ("import _posixsubprocess", "halted"),
        ("import ctypes", "ctypes.dlopen"),
        ("import os\nos.kill(os.getppid(), 9)", "os.kill"),
        ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))", "setrlimit"),
    ],
)
def test_sandbox_refuses_processes_signals_and_limits(code: str, refused: str) -> None:
    result = run_python_tests(code, ["pass"])
    assert result.passed == 0
    assert refused in str(result.error)


def test_sandbox_keeps_writes_inside_its_directory_and_hides_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "victim.txt"
    outside.write_text("keep me")
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-secret")
    tests = [
        "open('scratch.txt', 'w').write('ok')",
        "assert open('scratch.txt').read() == 'ok'",
        "import os\nassert 'OPENROUTER_API_KEY' not in os.environ",
        "import asyncio\nasyncio.run(asyncio.sleep(0))",  # a local socketpair is allowed
        f"import os\nos.remove({str(outside)!r})",
        f"open({str(outside)!r}, 'w')",
    ]
    result = run_python_tests("", tests)
    assert result.passed == 4
    assert "outside the sandbox" in str(result.error)
    assert outside.read_text() == "keep me"


def test_sandbox_result_cannot_be_forged_by_printing() -> None:
    forged = json.dumps({"passed": 1, "error": None})
    code = f"import os, sys\nprint({forged!r})\nos.write(1, b'x')\nos._exit(0)"
    assert run_python_tests(code, ["pass"]).passed == 0


# ---------------------------------------------------------------------- judge


def test_judge_prompt_holds_question_reference_rubric_and_a_bounded_answer() -> None:
    spec = {"name": "judge", "rubric": "Names Rayleigh scattering."}
    judged = query("Rayleigh scattering", spec, "Why is the sky blue?")
    messages = judge_messages(judged, "Because of scattering.", judged.grader)  # type: ignore[arg-type]
    text = messages[-1]["content"]
    for part in ("Why is the sky blue?", "Rayleigh scattering", "Names Rayleigh", "Because of"):
        assert part in text
    long = judge_messages(judged, "é" * JUDGE_ANSWER_LIMIT_BYTES, judged.grader)  # type: ignore[arg-type]
    size = sum(len(m["content"].encode()) for m in long)
    assert size <= judge_prompt_bytes_bound(judged, judged.grader)  # type: ignore[arg-type]
    assert "[... cut at" in long[-1]["content"]


@pytest.mark.parametrize(
    ("verdict", "score"),
    [
        ("Good.\nScore: 7", 0.7),
        ("**Score:** 10", 1.0),
        ("Score: 3/10", 0.3),
        ("score = 0", 0.0),
        ("First Score: 2 then revised.\nScore: 9", 0.9),
        ("Score: 11", None),
        ("Score: 4/5", None),
        ("Seven out of ten.", None),
    ],
)
def test_judge_score_is_the_last_score_line(verdict: str, score: float | None) -> None:
    assert parse_judge_score(verdict) == score


def test_local_grade_refuses_judge_queries() -> None:
    with pytest.raises(ValueError, match="needs a judge call"):
        grade(query(None, {"name": "judge", "rubric": "r"}), "answer")


# ---------------------------------------------------------------------- the sample set


def test_every_sample_reference_passes_its_grader_and_a_wrong_answer_fails() -> None:
    """The offline server's right and wrong answers (``testing._answer_key``) really are."""
    key = load_answer_key(SAMPLE)
    for item in load_queries(SAMPLE):
        if item.grader.name == "judge":
            continue
        answers = key[item.query]
        assert grade(item, answers.correct) == 1.0, item.line
        assert grade(item, answers.wrong) == 0.0, item.line


def test_a_verdict_is_quoted_on_one_terminal_safe_line_and_cut_short() -> None:
    from langchain_avengers.calibration.graders import verdict_excerpt

    said = "Fine.\nScore: ten\x1b[2J\u202e" + "x" * 300
    shown = verdict_excerpt(said, limit=33)  # escapes count as what is shown
    assert shown == '"Fine.\\nScore: ten\\x1b[2J\\u202exxx"...'
    assert shown.isprintable()
    assert verdict_excerpt("ok") == '"ok"'
