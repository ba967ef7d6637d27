"""Pricing: tokens-only answers priced for fitting, and whole files repriced, from a catalog."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from langchain_avengers import CalibrationData, CalibrationRecord, RecordsError, load_records
from langchain_avengers.catalog.base import CatalogError, CatalogWarning, load_catalog
from langchain_avengers.records.format import RecordsWarning
from langchain_avengers.records.pricing import (
    PricedCostsWarning,
    PricingError,
    price_missing_costs,
    reprice_file,
    reprice_records,
)

# list prices of acme_catalog.json, USD per million tokens (input, output)
PRICES = {"acme/tiny": (0.1, 0.2), "acme/medium": (3.0, 6.0), "acme/large": (60.0, 120.0)}


def list_price(model: str, prompt: int, completion: int) -> float:
    inp, out = PRICES[model]
    return (prompt * inp + completion * out) / 1e6


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def drop(small: Path, out: Path, fields: dict[tuple[str, str], tuple[str, ...]]) -> Path:
    """small.jsonl with some usage fields removed: (index, model) -> field names."""
    rows = rows_of(small)
    for row in rows:
        for (index, model), names in fields.items():
            if row["index"] == index:
                for name in names:
                    del row["usages"][model][name]
    return write_rows(out, rows)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- tokens but no cost


def test_tokens_only_answers_are_priced_from_the_catalog_with_a_note(
    small_jsonl: Path, acme_catalog: Path, tmp_path: Path
) -> None:
    path = drop(
        small_jsonl,
        tmp_path / "tokens.jsonl",
        {("arith-0", "acme/medium"): ("cost",), ("code-4", "acme/large"): ("cost",)},
    )
    with pytest.warns(PricedCostsWarning) as caught:
        data = CalibrationData.from_path(path, catalog=acme_catalog)
    assert len(caught) == 1
    note = str(caught[0].message)
    assert note.startswith(f"{path}: priced 2 answer(s) from their tokens")
    assert str(acme_catalog) in note
    assert "as of 2026-01-01" in note

    full = CalibrationData.from_path(small_jsonl)
    rows = {index: i for i, index in enumerate(r["index"] for r in rows_of(small_jsonl))}
    medium, large = data.models.index("acme/medium"), data.models.index("acme/large")
    expected = full.costs.copy()
    expected[rows["arith-0"], medium] = list_price("acme/medium", 20, 40)
    expected[rows["code-4"], large] = list_price("acme/large", 24, 160)
    np.testing.assert_allclose(data.costs, expected, equal_nan=True)
    assert expected[rows["code-4"], large] == pytest.approx(0.02064)


def test_price_missing_costs_returns_new_records_with_provenance(
    small_jsonl: Path, acme_catalog: Path, tmp_path: Path
) -> None:
    path = drop(small_jsonl, tmp_path / "t.jsonl", {("arith-0", "acme/tiny"): ("cost",)})
    records = load_records(path)
    priced = price_missing_costs(records, load_catalog(acme_catalog))
    assert records[0].usages["acme/tiny"].cost is None  # the input is not changed
    usage = priced.records[0].usages["acme/tiny"]
    assert usage.cost == pytest.approx(list_price("acme/tiny", 20, 40))
    assert usage.priced_from == f"{acme_catalog} @ 2026-01-01"
    assert usage.prompt_tokens == 20
    assert priced.records[1] is records[1]  # untouched records are shared, not copied
    assert priced.records[0].location == f"{path}:1"
    assert priced.summary.priced == 1


def test_completion_tokens_alone_are_priced_reasoning_is_not_added(
    acme_catalog: Path, tmp_path: Path
) -> None:
    row = {
        "query": "Think hard.",
        "records": {"acme/medium": 1},
        "usages": {
            "acme/medium": {"prompt_tokens": 10, "completion_tokens": 500, "reasoning_tokens": 400}
        },
    }
    path = write_rows(tmp_path / "r.jsonl", [row])
    with pytest.warns(PricedCostsWarning):
        data = CalibrationData.from_path(path, catalog=acme_catalog)
    assert data.costs[0, 0] == pytest.approx(list_price("acme/medium", 10, 500))


def test_files_with_every_cost_never_read_the_catalog(
    small_jsonl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "openrouter_models.json").write_text("{ not json")  # a broken live catalog
    monkeypatch.setenv("AVENGERS_CACHE_DIR", str(cache))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(CalibrationData.from_path(small_jsonl)) == 90
    tokens_only = drop(small_jsonl, tmp_path / "t.jsonl", {("arith-0", "acme/tiny"): ("cost",)})
    # "auto" is read once a price is needed: the damaged cache is named and skipped
    with (
        pytest.warns(CatalogWarning, match=r"openrouter_models\.json"),
        pytest.raises(PricingError, match="acme/tiny"),
    ):
        CalibrationData.from_path(tokens_only)


def test_a_named_catalog_file_is_checked_even_when_no_price_is_needed(
    small_jsonl: Path, tmp_path: Path
) -> None:
    with pytest.raises(CatalogError, match=r"missing\.json"):
        CalibrationData.from_path(small_jsonl, catalog=tmp_path / "missing.json")


@pytest.mark.parametrize(
    "removed", [("cost", "prompt_tokens", "completion_tokens"), ("cost", "completion_tokens")]
)
def test_neither_cost_nor_tokens_names_file_line_and_field(
    small_jsonl: Path, acme_catalog: Path, tmp_path: Path, removed: tuple[str, ...]
) -> None:
    path = drop(small_jsonl, tmp_path / "gap.jsonl", {("arith-2", "acme/medium"): removed})
    with pytest.raises(RecordsError) as info:
        CalibrationData.from_path(path, catalog=acme_catalog)
    message = str(info.value)
    assert message.startswith(f"{path}:3: field 'usages.acme/medium.cost'")
    assert "neither a cost nor token counts" in message


def test_a_scored_model_without_any_usage_is_the_same_error(tmp_path: Path) -> None:
    row = {"query": "q", "records": {"a": 1, "b": 0}, "usages": {"a": {"cost": 0.1}}}
    path = write_rows(tmp_path / "d.jsonl", [row])
    with pytest.raises(RecordsError, match=r"d\.jsonl:1: field 'usages\.b\.cost'"):
        CalibrationData.from_path(path)


def test_records_in_memory_keep_unknown_costs_as_unknown() -> None:
    # the rule is for files read to fit or evaluate; records built in code keep NaN costs
    row = {"query": "q", "records": {"a": 1, "b": 0}, "usages": {"a": {"cost": 0.1}}}
    data = CalibrationData.from_records([CalibrationRecord.model_validate(row)])
    assert np.isnan(data.costs[0, 1])


def test_an_unpriced_model_is_a_clear_error(small_jsonl: Path, tmp_path: Path) -> None:
    path = drop(small_jsonl, tmp_path / "t.jsonl", {("arith-4", "acme/large"): ("cost",)})
    with pytest.raises(PricingError) as info:
        CalibrationData.from_path(path, catalog="bundled")
    message = str(info.value)
    assert message.startswith(f"{path}:5: field 'usages.acme/large'")
    assert "'acme/large' has token counts to price but no list price in the" in message
    assert "catalog used (" in message
    assert "bundled catalog" in message
    assert "--catalog FILE" in message
    assert "avengers catalog refresh" in message


# ---------------------------------------------------------------- repricing


def test_reprice_records_recomputes_every_cost_with_tokens(
    small_jsonl: Path, acme_catalog: Path
) -> None:
    records = load_records(small_jsonl)
    repriced = reprice_records(records, acme_catalog)
    with_tokens = sum(
        u is not None and u.prompt_tokens is not None for r in records for u in r.usages.values()
    )
    without = sum(len(r.usages) for r in records) - with_tokens
    assert (repriced.summary.priced, repriced.summary.without_tokens) == (with_tokens, without)
    assert with_tokens > 0
    assert without > 0
    for before, after in zip(records, repriced.records, strict=True):
        for model, usage in after.usages.items():
            old = before.usages[model]
            if old.prompt_tokens is None:
                assert usage is old  # no tokens: cost kept as it was
                continue
            assert usage.cost == pytest.approx(
                list_price(model, old.prompt_tokens, old.completion_tokens)
            )
            assert usage.billed_cost == old.cost
            assert usage.priced_from == f"{acme_catalog} @ 2026-01-01"
    assert "kept their cost" in repriced.summary.describe()


def test_repricing_twice_keeps_the_amount_billed(small_jsonl: Path, acme_catalog: Path) -> None:
    records = load_records(small_jsonl)
    once = reprice_records(records, acme_catalog).records
    twice = reprice_records(once, load_catalog(acme_catalog)).records
    assert twice[0].usages["acme/tiny"].billed_cost == records[0].usages["acme/tiny"].cost


def test_reprice_strict_refuses_answers_without_tokens(
    small_jsonl: Path, acme_catalog: Path
) -> None:
    with pytest.raises(RecordsError, match=r"small\.jsonl:2: field 'usages\.acme/tiny\."):
        reprice_records(load_records(small_jsonl), acme_catalog, strict=True)


def test_reprice_file_keeps_everything_else_and_leaves_the_input_alone(
    small_jsonl: Path, acme_catalog: Path, tmp_path: Path
) -> None:
    rows = rows_of(small_jsonl)[:4]
    rows[0]["judge"] = {"model": "acme/judge", "cost": 0.5}  # unknown fields stay
    rows[0]["usages"]["acme/tiny"]["latency_s"] = 1.25
    rows[2]["query"] += "\u2028a line separator inside the text"
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps(rows[0])
        + "\n\n"
        + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[1:]),
        encoding="utf-8",
    )
    digest = sha256(source)
    target = tmp_path / "out" / "repriced.jsonl"

    with pytest.warns(RecordsWarning, match=r"in\.jsonl:1: unknown field 'judge'"):
        summary = reprice_file(source, target, acme_catalog)

    assert sha256(source) == digest
    lines = target.read_text(encoding="utf-8").split("\n")
    assert lines[1] == ""  # the blank line is kept, so line numbers still match
    out = [json.loads(line) for line in lines if line]
    assert out[0]["judge"] == rows[0]["judge"]
    tiny = out[0]["usages"]["acme/tiny"]
    assert tiny["latency_s"] == 1.25
    assert tiny["cost"] == pytest.approx(list_price("acme/tiny", 20, 40))
    assert tiny["billed_cost"] == rows[0]["usages"]["acme/tiny"]["cost"]
    assert tiny["priced_from"] == f"{acme_catalog} @ 2026-01-01"
    assert out[1]["usages"] == rows[1]["usages"]  # odd row: no tokens, cost kept
    assert [r["records"] for r in out] == [r["records"] for r in rows]
    assert [r["query"] for r in out] == [r["query"] for r in rows]
    assert summary.priced == 6
    assert summary.without_tokens == 6
    assert sorted(p.name for p in target.parent.iterdir()) == ["repriced.jsonl"]


def test_reprice_file_refuses_to_write_over_its_input(
    small_jsonl: Path, acme_catalog: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(small_jsonl.read_bytes())
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    for target in (source, tmp_path / "." / "in.jsonl", link):
        with pytest.raises(ValueError, match="is the input file"):
            reprice_file(source, target, acme_catalog)
    assert source.read_bytes() == small_jsonl.read_bytes()


def test_a_failed_reprice_leaves_the_old_output_untouched(
    small_jsonl: Path, acme_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("earlier output\n")
    with pytest.raises(PricingError):
        reprice_file(small_jsonl, target, "bundled")  # no acme prices there
    assert target.read_text() == "earlier output\n"

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        reprice_file(small_jsonl, target, acme_catalog)
    assert target.read_text() == "earlier output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
