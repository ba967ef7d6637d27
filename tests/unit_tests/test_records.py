"""Calibration records: parsing, "not measured" semantics and error messages."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from langchain_avengers import CalibrationData, CalibrationRecord, RecordsError, Usage, load_records
from langchain_avengers.records.format import RecordsWarning


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def row(query: str = "q", **fields: object) -> str:
    return json.dumps({"query": query, **fields})


# ---------------------------------------------------------------- valid input


def test_load_records_parses_scores_costs_and_optional_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ok.jsonl",
        row(
            "What is 2 + 2?",
            dataset="math",
            index=0,
            records={"a": True, "b": 0.25, "c": None},
            usages={"a": {"cost": 0.5, "prompt_tokens": 10, "completion_tokens": 3}, "b": None},
        ),
        "",  # blank lines are skipped
        row("Capital of France?", records={"b": False, "a": 1}),
    )
    first, second = load_records(path)

    assert first.query == "What is 2 + 2?"
    assert first.dataset == "math"
    assert first.index == 0
    assert first.records == {"a": 1.0, "b": 0.25, "c": None}
    assert isinstance(first.records["a"], float)  # a bool is a score, stored as 1.0 / 0.0
    assert first.scored_models() == ["a", "b"]
    assert first.cost_of("a") == 0.5
    assert first.cost_of("b") is None  # usage null: cost unknown, not free
    assert first.cost_of("c") is None
    assert first.usages["a"] == Usage(cost=0.5, prompt_tokens=10, completion_tokens=3)
    assert second.dataset is None
    assert second.index is None
    assert second.records == {"b": 0.0, "a": 1.0}
    assert second.usages == {}


def test_calibration_data_marks_unmeasured_as_nan_not_zero(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ok.jsonl",
        row("q1", dataset="d1", records={"a": 1, "b": 0}, usages={"a": {"cost": 0.1}}),
        row(
            "q2",
            dataset="d2",
            records={"b": 1, "c": 0.5, "a": None},
            usages={"b": {"cost": 0.2}, "c": {"cost": 0.0}},
        ),
    )
    # b's cost on q1 is unknown: from_path (for fitting) refuses that, see test_pricing.py
    data = CalibrationData.from_records(load_records(path))

    assert data.models == ["a", "b", "c"]  # first-seen order over scored models
    assert data.queries == ["q1", "q2"]
    assert data.datasets == ["d1", "d2"]
    np.testing.assert_array_equal(data.scores, [[1.0, 0.0, np.nan], [np.nan, 1.0, 0.5]])
    np.testing.assert_array_equal(data.costs, [[0.1, np.nan, np.nan], [np.nan, 0.2, 0.0]])
    assert len(data) == 2


def test_calibration_data_column_selection_and_subset(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ok.jsonl",
        row("q1", records={"a": 1, "b": 0}, usages={"a": {"cost": 0.1}, "b": {"cost": 0.3}}),
        row("q2", records={"a": 0, "b": 1}, usages={"a": {"cost": 0.2}, "b": {"cost": 0.4}}),
        row("q3", records={"a": 1, "b": 1}, usages={"a": {"cost": 0.5}, "b": {"cost": 0.6}}),
    )
    records = load_records(path)
    data = CalibrationData.from_records(records, models=["b"])
    np.testing.assert_array_equal(data.scores, [[0.0], [1.0], [1.0]])
    np.testing.assert_array_equal(data.costs, [[0.3], [0.4], [0.6]])

    sub = CalibrationData.from_records(records).subset([2, 0])
    assert sub.queries == ["q3", "q1"]
    np.testing.assert_array_equal(sub.scores, [[1.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(sub.costs, [[0.5, 0.6], [0.1, 0.3]])


def test_fingerprint_is_stable_and_sensitive(tmp_path: Path) -> None:
    lines = [
        row("q1", records={"a": 1, "b": 0}, usages={"a": {"cost": 0.1}}),
        row("q2", records={"a": 0, "b": 1}, usages={"b": {"cost": 0.2}}),
    ]
    base = CalibrationData.from_records(load_records(write(tmp_path / "a.jsonl", *lines)))
    again = CalibrationData.from_records(load_records(write(tmp_path / "b.jsonl", *lines)))
    assert base.fingerprint() == again.fingerprint()
    assert len(base.fingerprint()) == 16

    changed_score = [*lines[:1], row("q2", records={"a": 0, "b": 0.5}, usages={"b": {"cost": 0.2}})]
    changed_cost = [*lines[:1], row("q2", records={"a": 0, "b": 1}, usages={"b": {"cost": 0.3}})]
    changed_query = [*lines[:1], row("q2!", records={"a": 0, "b": 1}, usages={"b": {"cost": 0.2}})]
    for i, variant in enumerate((changed_score, changed_cost, changed_query)):
        other = CalibrationData.from_records(
            load_records(write(tmp_path / f"c{i}.jsonl", *variant))
        )
        assert other.fingerprint() != base.fingerprint()


def test_same_index_in_different_datasets_is_not_a_duplicate(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ok.jsonl",
        row("q1", dataset="d1", index=0, records={"a": 1}),
        row("q2", dataset="d2", index=0, records={"a": 1}),
        row("q3", records={"a": 1}),  # no index: never a duplicate
        row("q4", records={"a": 1}),
    )
    assert len(load_records(path)) == 4


def test_small_fixture_loads_with_its_documented_gaps(small_jsonl: Path) -> None:
    data = CalibrationData.from_path(small_jsonl)
    assert len(data) == 90
    assert data.models == ["acme/tiny", "acme/medium", "acme/large"]
    assert sorted(set(data.datasets)) == ["arith", "capitals", "code"]
    scored = ~np.isnan(data.scores)
    costed = ~np.isnan(data.costs)
    assert scored.sum(axis=0).tolist() == [84, 89, 90]  # tiny: 6 code rows; medium: 1 null
    assert np.array_equal(costed, scored)  # every scored answer has its cost
    tokens = [r.usages[m].token_counts() for r in load_records(small_jsonl) for m in r.usages]
    assert sum(t is not None for t in tokens) == 132  # even-numbered queries carry tokens
    assert np.all((data.scores[scored] >= 0) & (data.scores[scored] <= 1))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("lines", "line_no", "expected"),
    [
        pytest.param(
            [row(records={"a": 1}), '{"query": "q", "records": {"a": 1}'],
            2,
            ["not valid JSON"],
            id="malformed-json",
        ),
        pytest.param(
            [row(records={"a": 1}), "[1, 2]"],
            2,
            ["expected a JSON object"],
            id="not-an-object",
        ),
        pytest.param(
            [row(records={"a": 1.5})],
            1,
            ["field 'records.a'", "less than or equal to 1", "1.5"],
            id="score-above-1",
        ),
        pytest.param(
            [row(records={"a": 0.5}), row(records={"a": -0.1})],
            2,
            ["field 'records.a'", "greater than or equal to 0", "-0.1"],
            id="score-below-0",
        ),
        pytest.param(
            [row(records={"a": "high"})],
            1,
            ["field 'records.a'", "valid number"],
            id="score-not-a-number",
        ),
        pytest.param(
            ['{"query": "q", "records": {"a": NaN}}'],
            1,
            ["field 'records.a'", "finite"],
            id="score-nan",
        ),
        pytest.param(
            [row(records={"a": 1}, usages={"a": {"cost": -0.01}})],
            1,
            ["field 'usages.a.cost'", "greater than or equal to 0", "-0.01"],
            id="negative-cost",
        ),
        pytest.param(
            ['{"query": "q", "records": {"a": 1}, "usages": {"a": {"cost": NaN}}}'],
            1,
            ["field 'usages.a.cost'", "finite"],
            id="nan-cost",
        ),
        pytest.param(
            ['{"query": "q", "records": {"a": 1}, "usages": {"a": {"cost": Infinity}}}'],
            1,
            ["field 'usages.a.cost'", "finite"],
            id="infinite-cost",
        ),
        pytest.param(
            [row(records={"a": 1}, usages={"a": {"cost": 1, "prompt_tokens": -3}})],
            1,
            ["field 'usages.a.prompt_tokens'", "greater than or equal to 0"],
            id="negative-tokens",
        ),
        pytest.param(
            [row(records={"a": 1}, usages={"a": {"cost": 1, "reasoning_tokens": -1}})],
            1,
            ["field 'usages.a.reasoning_tokens'", "greater than or equal to 0"],
            id="negative-reasoning-tokens",
        ),
        pytest.param(['{"records": {"a": 1}}'], 1, ["field 'query'", "required"], id="no-query"),
        pytest.param([row("")], 1, ["field 'query'"], id="empty-query"),
        pytest.param(
            [row("ok", records={"a": 1}), row(" \t\u2028 ", records={"a": 1})],
            2,
            ["field 'query'", "not only whitespace"],
            id="whitespace-query",
        ),
        pytest.param(
            [row(records={"a": 1}), '{"query": "q", "records": {"a": 1}, "x": ' + "[" * 100_000],
            2,
            ["nested too deeply"],
            id="deeply-nested",
        ),
        pytest.param(
            ['{"query": "q", "records": {"a": 1}, "index": ' + "7" * 5000 + "}"],
            1,
            ["number on this line is too long", "4300 digits"],
            id="5000-digit-integer",
        ),
        pytest.param([row()], 1, ["field 'records'", "required"], id="no-records"),
        pytest.param(
            [row(records=[1, 0])],
            1,
            ["field 'records'", "dictionary"],
            id="records-not-object",
        ),
    ],
)
def test_bad_rows_name_file_line_field_and_expectation(
    tmp_path: Path, lines: list[str], line_no: int, expected: list[str]
) -> None:
    path = write(tmp_path / "bad.jsonl", *lines)
    with pytest.raises(RecordsError) as info:
        load_records(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_no}: ")
    for part in expected:
        assert part in message
    assert "\n" not in message


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_line_separators_inside_strings_are_text(tmp_path: Path, separator: str) -> None:
    # JSON allows these unescaped inside strings; str.splitlines() would split the line there
    query = f"first part{separator}second part"
    path = tmp_path / "seps.jsonl"
    lines = [
        json.dumps(
            {"query": query, "records": {"a": 1}, "dataset": f"d{separator}"}, ensure_ascii=False
        ),
        row("next", records={"a": 7}),
    ]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    with pytest.raises(RecordsError, match=r"seps\.jsonl:2: field 'records\.a'"):
        load_records(path)  # line numbers still count real lines only
    path.write_text("\r\n".join(lines[:1]) + "\r\n", encoding="utf-8")
    (record,) = load_records(path)
    assert record.query == query
    assert record.dataset == f"d{separator}"


def test_unknown_top_level_fields_warn_once_each_with_the_nearest_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "typo.jsonl",
        row("q1", records={"a": 1}, usages={"a": {"cost": 0.1, "latency_s": 2.5}}),
        row("q2", records={"a": 1}, usage={"a": {"cost": 0.1}}),
        row("q3", records={"a": 0}, usage={"a": {"cost": 0.2}}, notes="rerun"),
    )
    with pytest.warns(RecordsWarning) as caught:
        records = load_records(path)
    messages = [str(w.message) for w in caught]
    assert messages == [
        f"{path}:2: unknown field 'usage' (did you mean 'usages'?); a record's fields are "
        "query, records, usages, dataset, index, propensities; ignored (on 2 lines, the first)",
        f"{path}:3: unknown field 'notes'; a record's fields are query, records, usages, "
        "dataset, index, propensities; ignored (on this line)",
    ]
    assert [r.cost_of("a") for r in records] == [0.1, None, None]
    assert records[0].usages["a"].model_extra == {"latency_s": 2.5}  # kept by design


def test_strict_refuses_an_unknown_top_level_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "typo.jsonl",
        row("q1", records={"a": 1}, usages={"a": {"cost": 0.1, "model": "a", "judge_cost": 0}}),
        row("q2", records={"a": 1}, usage={"a": {"cost": 0.1}}),
    )
    with pytest.raises(RecordsError) as info:
        load_records(path, strict=True)
    assert str(info.value) == (
        f"{path}:2: unknown field 'usage' (did you mean 'usages'?); a record's fields are "
        "query, records, usages, dataset, index, propensities (strict)"
    )
    with pytest.raises(RecordsError, match=r"typo\.jsonl:2: unknown field 'usage'"):
        CalibrationData.from_path(path, strict=True)
    assert len(load_records(write(tmp_path / "ok.jsonl", row(records={"a": 1})), strict=True))


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", row(records={"a": 1}), "", "  ", row(records={"a": 7}))
    with pytest.raises(RecordsError, match=r"bad\.jsonl:4: field 'records\.a'"):
        load_records(path)


@pytest.mark.parametrize("content", ["", "\n\n   \n"], ids=["zero-bytes", "blank-lines"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(RecordsError) as info:
        load_records(path)
    assert str(info.value) == f"{path}: no calibration records (the file is empty)"


def test_no_model_with_any_score(tmp_path: Path) -> None:
    path = write(
        tmp_path / "unscored.jsonl",
        row("q1", records={}),
        row("q2", records={"a": None, "b": None}, usages={"a": {"cost": 0.1}}),
    )
    with pytest.raises(RecordsError) as info:
        load_records(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "no model has any score" in message
    assert "'records'" in message


def test_duplicate_dataset_index_reports_both_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "dup.jsonl",
        row("q1", dataset="d", index="7", records={"a": 1}),
        row("q2", dataset="e", index="7", records={"a": 1}),
        row("q3", dataset="d", index="7", records={"a": 0}),
    )
    with pytest.raises(RecordsError) as info:
        load_records(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: duplicate (dataset, index)")
    assert "('d', '7')" in message
    assert f"first seen at {path}:1" in message


def test_duplicate_index_without_dataset_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path / "dup.jsonl",
        row("q1", index=3, records={"a": 1}),
        row("q2", index=3, records={"a": 1}),
    )
    with pytest.raises(RecordsError, match=r"dup\.jsonl:2: duplicate"):
        load_records(path)


def test_missing_file_is_a_records_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(RecordsError, match=r"nope\.jsonl: cannot read calibration records"):
        load_records(path)


def test_records_error_is_a_value_error() -> None:
    assert issubclass(RecordsError, ValueError)


def test_from_records_needs_at_least_one_record() -> None:
    with pytest.raises(RecordsError, match="at least one calibration record"):
        CalibrationData.from_records([])


def test_record_model_rejects_out_of_range_directly() -> None:
    with pytest.raises(ValueError, match="less than or equal to 1"):
        CalibrationRecord(query="q", records={"a": 1.01})
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Usage(cost=-1.0)
    assert Usage(cost=0.0).cost == 0.0  # free is allowed, and is not "unknown"
    assert Usage().cost is None
    assert math.isclose(CalibrationRecord(query="q", records={"a": True}).records["a"], 1.0)


def test_a_model_never_scored_is_left_out_with_a_warning() -> None:
    records = [
        CalibrationRecord(query="a", records={"m1": 1.0, "m2": None}),
        CalibrationRecord(query="b", records={"m1": 0.0}),
    ]
    with pytest.warns(UserWarning, match="m2"):
        data = CalibrationData.from_records(records)
    assert data.models == ["m1"]
