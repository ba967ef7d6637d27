"""The query-file format: the sample set loads, and every kind of bad line is named exactly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from langchain_avengers.calibration import Query, QueryFileError, load_queries
from langchain_avengers.calibration.queries import GRADER_OPTIONS

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "calibration" / "queries.jsonl"
GOOD = {"query": "What is 2 + 2?", "reference": 4, "grader": "numeric"}


def write(tmp_path: Path, *rows: object) -> Path:
    path = tmp_path / "queries.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(QueryFileError) as info:
        load_queries(path)
    return str(info.value)


def test_the_sample_set_covers_every_grader_and_several_datasets() -> None:
    queries = load_queries(SAMPLE)
    assert 45 <= len(queries) <= 60
    graders = Counter(q.grader.name for q in queries)
    assert set(graders) == set(GRADER_OPTIONS)
    assert min(graders.values()) >= 5
    assert len({q.dataset for q in queries}) >= 5
    assert len({q.key for q in queries}) == len(queries)
    assert [q.line for q in queries] == list(range(1, len(queries) + 1))


def test_a_grader_name_alone_means_its_defaults() -> None:
    query = Query.model_validate(GOOD)
    assert query.grader.name == "numeric"
    assert query.grader.tolerance == 1e-6  # type: ignore[union-attr]
    assert query.references() == [4]
    assert query.messages() == [{"role": "user", "content": "What is 2 + 2?"}]
    with_system = Query.model_validate({**GOOD, "system": "Be brief."})
    assert with_system.messages()[0] == {"role": "system", "content": "Be brief."}


def test_identity_is_dataset_and_index_else_a_hash_of_system_and_text() -> None:
    indexed = Query.model_validate({**GOOD, "dataset": "math", "index": 3})
    assert indexed.key == 'id:["math", 3]'
    assert indexed.record_index == 3
    plain = Query.model_validate(GOOD)
    assert plain.key.startswith("text:")
    assert str(plain.record_index).startswith("q-")
    assert Query.model_validate({**GOOD, "system": "x"}).key != plain.key
    assert Query.model_validate({**GOOD, "reference": 5}).key == plain.key


def test_fingerprints_tell_asking_from_grading() -> None:
    base = Query.model_validate(GOOD)
    regraded = Query.model_validate({**GOOD, "grader": {"name": "numeric", "tolerance": 0.5}})
    reworded = Query.model_validate({**GOOD, "query": "What is 2+2?"})
    assert regraded.prompt_fingerprint == base.prompt_fingerprint
    assert regraded.grading_fingerprint != base.grading_fingerprint
    assert reworded.prompt_fingerprint != base.prompt_fingerprint


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("{not json", ":2: not valid JSON"),
        ("[1, 2]", ":2: expected a JSON object, got list"),
        ('{"query": ' + "[" * 100_000 + "]" * 100_000 + "}", ":2: JSON nested too deeply"),
        ('{"query": "q", "n": ' + "9" * 5000 + "}", ":2: a number on this line is too long"),
        ({**GOOD, "refrence": 4}, ":2: unknown field 'refrence' (expected one of: query,"),
        (
            {**GOOD, "grader": {"name": "numeric", "tolerence": 0.1}},
            ":2: unknown field 'grader.tolerence' "
            "(expected one of: name, tolerance, rel_tolerance)",
        ),
        ({"reference": 4, "grader": "numeric"}, ":2: field 'query' is required"),
        ({**GOOD, "query": ""}, ":2: field 'query': string should have at least 1 character"),
        ({**GOOD, "grader": "exactt"}, "does not match any of the expected tags"),
        ({"query": "q", "grader": "exact"}, ":2: field 'reference': the exact grader needs a"),
        ({**GOOD, "reference": "four"}, ":2: field 'reference': reference 'four' is not a number"),
        (
            {**GOOD, "reference": True},
            ":2: field 'reference': expected a string, a number or a list of them (got true)",
        ),
        (
            {"query": "q", "reference": "E", "grader": {"name": "choice", "choices": "ABCD"}},
            ":2: field 'reference': reference 'E' is not one of the letters ABCD",
        ),
        (
            {"query": "q", "grader": {"name": "regex", "pattern": "(unclosed"}},
            ":2: field 'grader.pattern': not a valid regular expression",
        ),
        (
            {"query": "q", "grader": {"name": "regex", "pattern": "a", "flags": ["VERBOSE"]}},
            ":2: field 'grader.flags.0'",
        ),
        ({"query": "q", "grader": "python"}, ":2: field 'grader.tests' is required"),
        (
            {"query": "q", "grader": {"name": "python", "tests": ["assert f(1) =="]}},
            ":2: field 'grader.tests': test 0 is not valid Python",
        ),
        (
            {"query": "q", "grader": {"name": "python", "tests": ["pass"], "timeout": 0}},
            ":2: field 'grader.timeout': input should be greater than 0 (got 0)",
        ),
        ({"query": "q", "grader": {"name": "judge"}}, ":2: field 'grader.rubric' is required"),
        ({**GOOD, "index": True}, ":2: field 'index'"),
    ],
)
def test_a_bad_line_is_named_with_file_line_and_field(
    tmp_path: Path, row: object, expected: str
) -> None:
    path = write(tmp_path, GOOD, row)
    message = error_of(path)
    assert message.startswith((f"{path}:", str(path)))
    assert expected in message
    assert "\n" not in message


def test_line_separators_inside_a_query_do_not_end_its_line(tmp_path: Path) -> None:
    text = "first\u2028second\u2029third\x85fourth"
    raw = json.dumps({**GOOD, "query": text}, ensure_ascii=False)  # the separators unescaped
    path = write(tmp_path, raw, {**GOOD, "query": "other"})
    assert [q.query for q in load_queries(path)] == [text, "other"]


def test_duplicates_name_both_lines(tmp_path: Path) -> None:
    first = {**GOOD, "dataset": "math", "index": 1}
    path = write(tmp_path, first, {**GOOD, "query": "other"}, {**first, "query": "again"})
    assert error_of(path) == (
        f"{path}:3: duplicate query (dataset 'math', index 1), first at line 1"
    )
    path = write(tmp_path, GOOD, "", GOOD)
    assert error_of(path).startswith(f"{path}:3: duplicate query (same system message")


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    assert error_of(write(tmp_path, "")).endswith("no queries (the file is empty)")
    missing = tmp_path / "missing.jsonl"
    assert error_of(missing).startswith(f"{missing}: cannot read the query file")
