"""Journal, records, merge, shards, spend bounds and plans, without any network."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from langchain_avengers import load_records
from langchain_avengers.calibration import (
    Query,
    QueryFileError,
    Shard,
    StoreError,
    merge_records,
    plan_calibration,
)
from langchain_avengers.calibration.spend import (
    CallBound,
    SpendGuard,
    prompt_tokens_bound,
    worst_case_cost,
)
from langchain_avengers.calibration.store import (
    Journal,
    JournalEntry,
    journal_index,
    journal_path,
    latest_entries,
    read_entry,
    read_journal,
    write_records,
)
from langchain_avengers.catalog.base import bundled_catalog

POOL = ["openai/gpt-5", "qwen/qwen3-235b-a22b-2507"]


def make_queries(n: int = 3) -> list[Query]:
    return [
        Query.model_validate(
            {
                "query": f"What is {i} + {i}?",
                "reference": 2 * i,
                "grader": "numeric",
                "dataset": "math",
                "index": i,
            }
        )
        for i in range(n)
    ]


def entry(query: Query, model: str, score: float | None = 1.0, **extra: object) -> JournalEntry:
    return JournalEntry(
        key=query.key,
        model=model,
        prompt_fp=query.prompt_fingerprint,
        grading_fp=query.grading_fingerprint,
        score=score,
        usage={"cost": 0.001, "prompt_tokens": 10, "completion_tokens": 5},
        **extra,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------------- journal


def test_journal_round_trip_and_answers_on_request(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.journal"
    q = make_queries(1)[0]
    with Journal(path) as journal:
        journal.append(entry(q, POOL[0], answer="Answer: 0"))
        journal.append(entry(q, POOL[1], score=0.0))
    plain = list(read_journal(path))
    assert [e.model for e in plain] == POOL
    assert plain[0].answer is None
    assert next(read_journal(path, answers=True)).answer == "Answer: 0"


def test_a_torn_last_line_is_ignored_then_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.journal"
    q = make_queries(1)[0]
    with Journal(path) as journal:
        journal.append(entry(q, POOL[0]))
    with path.open("ab") as handle:
        handle.write(b'{"v":1,"key":"id:[\\"math\\", 0]","mod')  # a power cut mid-write
    assert [e.model for e in read_journal(path)] == [POOL[0]]
    with Journal(path) as journal:
        journal.append(entry(q, POOL[1]))
    assert [e.model for e in read_journal(path)] == POOL
    assert path.read_bytes().count(b"\n") == 2


def test_a_damaged_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.journal"
    q = make_queries(1)[0]
    path.write_bytes(b"garbage\n" + entry(q, POOL[0]).to_line())
    with pytest.raises(StoreError, match=rf"^{path}:1: damaged journal line"):
        list(read_journal(path))


def test_two_runs_cannot_write_one_journal(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.journal"
    with Journal(path), pytest.raises(StoreError, match="another run is writing"):
        Journal(path)
    Journal(path).close()  # free again once the first is closed


def test_the_latest_entry_of_a_pair_wins(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.journal"
    q = make_queries(1)[0]
    with Journal(path) as journal:
        journal.append(entry(q, POOL[0], score=0.0))
        journal.append(entry(q, POOL[0], score=1.0))
    assert latest_entries(path)[(q.key, POOL[0])].score == 1.0


# ---------------------------------------------------------------------- records


def test_records_keep_current_pairs_in_query_order(tmp_path: Path) -> None:
    queries = make_queries(3)
    changed = Query.model_validate(
        {**queries[1].model_dump(), "grader": {"name": "numeric", "tolerance": 0.5}}
    )
    out = tmp_path / "records.jsonl"
    with Journal(journal_path(out)) as journal:
        journal.append(entry(queries[2], POOL[1], score=1.0))
        journal.append(entry(queries[0], POOL[0], answer="0"))
        journal.append(entry(changed, POOL[0]))  # graded otherwise than now: left out
        journal.append(entry(queries[2], POOL[1], score=0.0))  # supersedes the first line
    index = journal_index(journal_path(out))
    assert index[queries[1].key, POOL[0]].is_current(changed)
    assert not index[queries[1].key, POOL[0]].is_current(queries[1])
    assert write_records(out, queries, POOL, journal_path(out)) == (2, 2)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 2]
    assert rows[1]["records"] == {POOL[1]: 0.0}
    assert rows[0]["usages"][POOL[0]]["cost"] == 0.001
    assert [r.index for r in load_records(out)] == [0, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl", "records.jsonl.journal"]


def test_an_ungraded_pair_keeps_its_answer_and_reason_and_is_pending_but_not_recorded(
    tmp_path: Path,
) -> None:
    queries = make_queries(2)
    out = tmp_path / "records.jsonl"
    ungraded = entry(queries[0], POOL[0], score=None, answer="4", failure='judge j: "hmm"')
    with Journal(journal_path(out)) as journal:
        journal.append(entry(queries[1], POOL[0]))
        journal.append(ungraded)
    lines = journal_path(out).read_bytes().splitlines()
    assert [json.loads(line)["v"] for line in lines] == [1, 2]  # graded lines stay version 1
    assert latest_entries(journal_path(out), answers=True)[queries[0].key, POOL[0]] == ungraded
    index = journal_index(journal_path(out))
    ref = index[queries[0].key, POOL[0]]
    assert not ref.graded
    assert ref.is_current(queries[0])
    assert not ref.is_done(queries[0])
    assert read_entry(journal_path(out), ref) == ungraded
    plan = plan_calibration(queries, [POOL[0]], out, catalog=bundled_catalog())
    assert [q.key for q, _ in plan.pending(index)] == [queries[0].key]
    assert plan.saved_answer(ref, queries[0])
    assert write_records(out, queries, [POOL[0]], journal_path(out)) == (1, 1)
    # its answer is paid: the estimate counts no answer call for it
    assert [r.calls for r in plan.estimate(index).answers] == []


def test_a_journal_of_a_newer_format_is_refused_by_its_version(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.journal"
    q = make_queries(1)[0]
    path.write_bytes(entry(q, POOL[0]).to_line().replace(b'"v":1', b'"v":3'))
    with pytest.raises(StoreError, match=r":1: journal format version 3 is not 1 or 2$"):
        list(read_journal(path))


# ---------------------------------------------------------------------- merge


def write_rows(path: Path, *rows: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def row(index: int, **records: float) -> dict[str, object]:
    return {
        "query": f"What is {index} + {index}?",
        "dataset": "math",
        "index": index,
        "records": records,
        "usages": {m: {"cost": 0.5, "latency_s": 1.0} for m in records},
    }


def test_merge_joins_rows_and_keeps_identical_pairs_once(tmp_path: Path) -> None:
    a = write_rows(tmp_path / "a.jsonl", row(0, m1=1.0), row(2, m1=0.0))
    b = write_rows(tmp_path / "b.jsonl", row(1, m2=1.0), row(0, m1=1.0, m2=0.0))
    out = tmp_path / "all.jsonl"
    result = merge_records([a, b], out)
    assert (result.rows, result.pairs, result.duplicates) == (3, 4, 1)
    merged = load_records(out)
    assert [r.index for r in merged] == [0, 2, 1]
    assert merged[0].records == {"m1": 1.0, "m2": 0.0}
    assert merged[0].usages["m2"].model_dump(exclude_unset=True) == {"cost": 0.5, "latency_s": 1}
    ordered = merge_records([a, b], out, queries=make_queries(3))
    assert ordered.rows == 3
    assert [r.index for r in load_records(out)] == [0, 1, 2]


def test_merge_takes_index_0_and_string_0_as_one_query(tmp_path: Path) -> None:
    a = write_rows(tmp_path / "a.jsonl", row(0, m1=1.0))
    b = write_rows(tmp_path / "b.jsonl", {**row(0, m2=0.0), "index": "0"})
    out = tmp_path / "all.jsonl"
    result = merge_records([a, b], out)
    assert (result.rows, result.pairs) == (1, 2)
    [merged] = load_records(out)
    assert merged.records == {"m1": 1.0, "m2": 0.0}
    assert merge_records([a, b], out, queries=make_queries(1)).rows == 1


def test_merge_refuses_conflicts_and_names_both_files(tmp_path: Path) -> None:
    a = write_rows(tmp_path / "a.jsonl", row(0, m1=1.0))
    b = write_rows(tmp_path / "b.jsonl", row(0, m1=0.0))
    with pytest.raises(
        StoreError, match=rf"{b}: model m1 .* differs from {a} \(score 0.0 vs 1.0\)"
    ):
        merge_records([a, b], tmp_path / "out.jsonl")
    slower = {**row(0, m1=1.0), "usages": {"m1": {"cost": 0.5, "latency_s": 2.0}}}
    d = write_rows(tmp_path / "d.jsonl", slower)
    with pytest.raises(StoreError, match=r"\(usage latency_s 2.0 vs 1.0\)"):
        merge_records([a, d], tmp_path / "out.jsonl")
    other_text = {**row(0, m2=1.0), "query": "Something else"}
    c = write_rows(tmp_path / "c.jsonl", other_text)
    with pytest.raises(StoreError, match=rf"{c}: query .* in {a}"):
        merge_records([a, c], tmp_path / "out.jsonl")
    with pytest.raises(StoreError, match="is not in the query file"):
        merge_records([a], tmp_path / "out.jsonl", queries=make_queries(0))
    assert not (tmp_path / "out.jsonl").exists()


# ---------------------------------------------------------------------- shards


def test_shards_partition_the_pairs_deterministically() -> None:
    keys = [f"id:{i}" for i in range(200)]
    models = ["a/x", "b/y", "c/z"]
    shards = [Shard(k, 4) for k in range(4)]
    owners = [[s.index for s in shards if s.holds(k, m)] for k in keys for m in models]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(o == [s.index] for o in owners) for s in shards]
    assert min(sizes) > 100  # roughly even
    assert Shard.parse("3/4") == Shard(3, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="shard"):
            Shard.parse(bad)


# ---------------------------------------------------------------------- spend


def calls(worst: float, model: str = "m", **bound: Any) -> list[CallBound]:
    """One call of ``model`` whose worst case at list prices is ``worst`` USD."""
    values = {"prompt_tokens": 100, "output_tokens": 100, "attempts": 1, **bound}
    return [CallBound(model, worst, **values)]


def billed_guard(cap: float | None, *models: str) -> SpendGuard:
    """A guard that has seen a bill at list price from each model (no probing left)."""
    guard = SpendGuard(cap=cap)
    for model in models or ("m",):
        guard.observe(model, None, None, (None, None))
    return guard


async def test_spend_guard_waits_then_stops_and_never_crosses_the_cap() -> None:
    guard = billed_guard(1.0)
    first = await guard.reserve(calls(0.6))
    assert first is not None
    assert first.held == 0.6
    waiting = asyncio.create_task(guard.reserve(calls(0.6)))
    await asyncio.sleep(0)
    assert not waiting.done()  # 0.6 + 0.6 would cross the cap: wait for the first to settle
    await guard.settle(first, answer=0.3)
    second = await waiting
    assert second is not None
    assert second.held == 0.6
    await guard.settle(second, answer=0.6)
    assert await guard.reserve(calls(0.6)) is None  # nothing in flight and it cannot fit: stop
    assert guard.spent == pytest.approx(0.9)


async def test_a_model_runs_one_pair_until_its_first_bill_is_seen() -> None:
    guard = SpendGuard(cap=1.0)
    probe = await guard.reserve(calls(0.01))
    assert probe is not None
    assert probe.probes == ("m",)
    waiting = asyncio.create_task(guard.reserve(calls(0.01)))
    other = await guard.reserve(calls(0.01, model="other"))  # another model probes at once
    assert other is not None
    await asyncio.sleep(0)
    assert not waiting.done()
    guard.observe("m", billed=0.05, list_price=0.005, tokens=(50, 10))  # 10x its list price
    await guard.settle(probe, answer=0.05)
    second = await waiting
    assert second is not None
    assert second.held == pytest.approx(0.1)
    assert second.probes == ()


def test_a_model_listed_free_is_reserved_at_the_prices_its_bills_imply() -> None:
    guard = SpendGuard(cap=10.0)
    assert guard.worst_of(calls(0.0)[0]) == 0.0
    guard.observe("m", billed=0.002, list_price=0.0, tokens=(100, 20))
    # at most 0.002/100 per prompt token and 0.002/20 per completion token
    bound = calls(0.0, prompt_tokens=1000, output_tokens=400, attempts=2)[0]
    assert guard.worst_of(bound) == pytest.approx((1000 * 2e-5 + 400 * 1e-4) * 2)


async def test_spend_guard_under_random_load() -> None:
    rng = random.Random(7)
    guard = billed_guard(5.0)

    async def pair() -> None:
        worst = rng.uniform(0.05, 0.4)
        held = await guard.reserve(calls(worst))
        if held is None:
            return
        await asyncio.sleep(rng.uniform(0, 0.002))
        timed_out = rng.random() < 0.1
        await guard.settle(
            held, answer=0.0 if timed_out else worst * rng.random(), unknown=worst * timed_out
        )
        assert guard.spent + guard.possibly_billed <= guard.cap

    await asyncio.gather(*(pair() for _ in range(300)))
    assert guard.spent + guard.possibly_billed <= 5.0
    assert guard.reserved == pytest.approx(0.0)


def test_price_factor_scales_later_reservations() -> None:
    guard = SpendGuard(cap=10.0)
    guard.observe("m", billed=0.3, list_price=0.2, tokens=(10, 10))
    assert guard.price_factor == {"m": pytest.approx(1.5)}
    reservation = asyncio.run(guard.reserve(calls(1.0)))
    assert reservation is not None
    assert reservation.held == pytest.approx(1.5)
    assert guard.worst_of(calls(1.0, model="other")[0]) == 1.0


def test_worst_case_is_bytes_as_tokens_at_list_prices() -> None:
    profile = {"input_usd_per_mtok": 2.0, "output_usd_per_mtok": 10.0}
    messages = [{"role": "user", "content": "héllo"}]  # 6 UTF-8 bytes
    bound = prompt_tokens_bound(messages)
    assert bound == 6 + 16 + 64
    assert worst_case_cost(profile, bound, 100, attempts=3) == pytest.approx(
        3 * (bound * 2.0 + 100 * 10.0) / 1e6
    )
    assert worst_case_cost({}, bound, 100, attempts=1) is None


# ---------------------------------------------------------------------- plans


def test_plan_refuses_bad_pools_and_missing_judges(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="given twice"):
        plan_calibration(make_queries(), [POOL[0], POOL[0]], tmp_path / "o.jsonl")
    with pytest.raises(ValueError, match="at least one model"):
        plan_calibration(make_queries(), [], tmp_path / "o.jsonl")
    judged = Query.model_validate({"query": "q", "grader": {"name": "judge", "rubric": "r"}})
    with pytest.raises(QueryFileError, match="needs a judge model"):
        plan_calibration([judged], POOL, tmp_path / "o.jsonl")
    plan = plan_calibration([judged], POOL, tmp_path / "o.jsonl", judge_model="acme/unknown")
    assert plan.unpriced_models() == ["acme/unknown"]


def test_estimate_counts_pending_pairs_and_states_its_assumptions(tmp_path: Path) -> None:
    queries = make_queries(4)
    plan = plan_calibration(queries, POOL, tmp_path / "o.jsonl", catalog=bundled_catalog())
    done = {(queries[0].key, POOL[0]): entry(queries[0], POOL[0])}
    estimate = plan.estimate(done)
    assert (estimate.pairs, estimate.already_done) == (8, 1)
    calls = {r.model: (r.calls, r.output_tokens) for r in estimate.answers}
    assert calls == {POOL[0]: (3, 2000), POOL[1]: (4, 400)}  # gpt-5 reasons, qwen does not
    assert 0 < estimate.expected < estimate.worst
    table = estimate.table()
    assert "| openai/gpt-5 | answers | 3 |" in table
    assert "Output tokens assumed: 400 a call, 2,000 for reasoning models" in table
