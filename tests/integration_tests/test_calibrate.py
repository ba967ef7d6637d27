"""``avengers calibrate`` against the local OpenRouter-compatible server (real HTTP, loopback).

The server answers the sample queries with deterministic per-model skill
(``langchain_avengers.testing._answer_key``), so every score below is known in advance.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from local_chat import Joke, closed_port, magic_function

from langchain_avengers import AvengersChatModel, ClusterRouter, load_records
from langchain_avengers.calibration import ApiSettings, calibrate, load_queries
from langchain_avengers.calibration.store import Journal, StoreError, journal_path
from langchain_avengers.catalog.base import Catalog, bundled_catalog, list_price_cost
from langchain_avengers.cli.main import main
from langchain_avengers.testing import OfflineOpenRouter
from langchain_avengers.testing._answer_key import (
    JUDGE_MARKERS,
    load_answer_key,
    skill,
    unit_hash,
)
from langchain_avengers.testing._models import REASONING_MODELS

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "calibration" / "queries.jsonl"
POOL = ["openai/gpt-5", "anthropic/claude-sonnet-4.5", "qwen/qwen3-235b-a22b-2507"]
JUDGE = "google/gemini-2.5-flash"


@pytest.fixture(autouse=True)
def _bundled_catalog_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled catalog only (no user cache), and a key for the local server."""
    monkeypatch.setenv("AVENGERS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENROUTER_API_KEY", "test-key")


def answer_requests(server: OfflineOpenRouter) -> list[tuple[str, str]]:
    """(model, query) of every answer request (judge requests left out)."""
    pairs = []
    for body in server.requests:
        text = body["messages"][-1]["content"]
        if JUDGE_MARKERS[0] not in text:
            pairs.append((body["model"], text))
    return pairs


def judge_requests(server: OfflineOpenRouter) -> int:
    return sum(JUDGE_MARKERS[0] in b["messages"][-1]["content"] for b in server.requests)


def cli(server: OfflineOpenRouter, *args: str) -> int:
    return main(["calibrate", *args, "--base-url", server.base_url])


def subset(tmp_path: Path, *, datasets: set[str]) -> Path:
    """The sample lines of some datasets (no python grader: no sandbox time)."""
    lines = [
        line for line in SAMPLE.read_text().splitlines() if json.loads(line)["dataset"] in datasets
    ]
    path = tmp_path / "subset.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def sample_run(
    openrouter_server: OfflineOpenRouter, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The sample set calibrated once on the pool through the CLI, with answers saved."""
    server = openrouter_server
    server.reset()
    server.answer_key = load_answer_key(SAMPLE)
    out = tmp_path_factory.mktemp("sample") / "records.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENROUTER_API_KEY", "test-key")
        patch.setenv("AVENGERS_CACHE_DIR", str(out.parent / "cache"))
        code = cli(
            server,
            str(SAMPLE),
            "--models",
            ",".join(POOL),
            "-o",
            str(out),
            "--judge-model",
            JUDGE,
            "--save-answers",
        )
    requests = list(server.requests)
    server.reset()
    return {"out": out, "code": code, "requests": requests}


def copy_run(run: dict[str, Any], tmp_path: Path) -> Path:
    out = tmp_path / "records.jsonl"
    shutil.copy(run["out"], out)
    shutil.copy(journal_path(run["out"]), journal_path(out))
    return out


# ---------------------------------------------------------------------- the sample run


def test_every_pair_is_recorded_with_its_known_score_and_usage(sample_run: dict) -> None:
    assert sample_run["code"] == 0
    records = load_records(sample_run["out"])
    queries = {q.query: q for q in load_queries(SAMPLE)}
    key = load_answer_key(SAMPLE)
    assert len(records) == len(queries) == 50
    for record in records:
        assert list(record.records) == POOL
        spec = key[record.query]
        for model in POOL:
            right = unit_hash("answer", model, record.query) < skill(model, spec.kind, {})
            judged = queries[record.query].grader.name == "judge"
            expected = (1.0 if right else 0.1) if judged else float(right)
            assert record.records[model] == expected, (record.query, model)
            usage = record.usages[model]
            assert usage is not None
            extra = usage.model_extra or {}
            assert usage.cost
            assert usage.cost > 0
            assert extra["cost_source"] == "openrouter"
            assert extra["answered_by"] == model
            assert extra["latency_s"] >= 0
            assert usage.reasoning_tokens is not None
            assert (usage.reasoning_tokens > 0) == (model in REASONING_MODELS)
            assert ("judge_cost" in extra) == judged
            if judged:
                assert extra["judge_model"] == JUDGE
                assert extra["judge_cost"] > 0
    answer_calls = Counter(m for m, _ in answer_requests_of(sample_run["requests"]))
    assert answer_calls == dict.fromkeys(POOL, 50)


def answer_requests_of(requests: list[dict]) -> list[tuple[str, str]]:
    return [
        (b["model"], b["messages"][-1]["content"])
        for b in requests
        if JUDGE_MARKERS[0] not in b["messages"][-1]["content"]
    ]


def test_requests_carry_max_tokens_and_temperature_as_profiles_allow(sample_run: dict) -> None:
    for body in sample_run["requests"]:
        assert body["max_tokens"] == 4096
        assert ("temperature" in body) == (body["model"] != "openai/gpt-5")  # gpt-5 takes none


def test_the_output_fits_a_router_that_routes_tools_and_structured_output(
    sample_run: dict, server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    router_dir = tmp_path / "router"
    assert main(["fit", str(sample_run["out"]), "-o", str(router_dir), "--n-clusters", "4"]) == 0
    assert main(["evaluate", str(sample_run["out"]), "--n-clusters", "4", "--seeds", "1"]) == 0
    capsys.readouterr()
    assert ClusterRouter.load(router_dir).models_ == POOL

    llm = AvengersChatModel(router=str(router_dir), base_url=server.base_url, api_key="test-key")
    called = llm.bind_tools([magic_function]).invoke("What is magic_function(3)?")
    assert called.tool_calls[0]["name"] == "magic_function"
    assert called.tool_calls[0]["args"] == {"input": 3}
    assert called.response_metadata["model_name"] in POOL
    joke = llm.with_structured_output(Joke).invoke("Tell me a joke about 'cats'")
    assert isinstance(joke, Joke)
    assert server.models_called()[0] in POOL


def test_a_rerun_skips_everything_and_a_new_model_asks_only_its_pairs(
    sample_run: dict, server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = copy_run(sample_run, tmp_path)
    before = out.read_text()
    server.answer_key = load_answer_key(SAMPLE)
    args = [str(SAMPLE), "-o", str(out), "--judge-model", JUDGE]
    assert cli(server, *args, "--models", ",".join(POOL)) == 0
    assert server.requests == []
    assert out.read_text() == before
    assert "0 answered now, 150 already done (skipped)" in capsys.readouterr().err
    added = "mistralai/mistral-large-2512"
    assert cli(server, *args, "--models", ",".join([*POOL, added])) == 0
    assert Counter(m for m, _ in answer_requests(server)) == {added: 50}
    assert judge_requests(server) == 7
    records = load_records(out)
    assert all(list(r.records) == [*POOL, added] for r in records)


def test_regrade_rescores_saved_answers_and_rejudges_only_with_leave(
    sample_run: dict, server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = copy_run(sample_run, tmp_path)
    lines = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    for line in lines:
        if line["grader"] == "numeric":
            line["grader"] = {"name": "numeric", "tolerance": 2.0}
        if isinstance(line["grader"], dict) and line["grader"]["name"] == "judge":
            line["grader"]["rubric"] += " Be strict."
    changed = tmp_path / "changed.jsonl"
    changed.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ["regrade", str(changed), "-o", str(out), "--judge-model", JUDGE]
    assert main(args) == 2
    assert "need re-judging" in capsys.readouterr().err
    assert main([*args, "--allow-judge-calls", "--base-url", server.base_url]) == 0
    assert answer_requests(server) == []
    assert judge_requests(server) == 21
    err = capsys.readouterr().err
    assert "150 pairs re-scored" in err
    assert "judge spend $" in err
    assert len(load_records(out)) == 50


def test_regrade_that_calls_no_judge_needs_no_judge_model(
    sample_run: dict, server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = copy_run(sample_run, tmp_path)
    before = load_records(out)
    assert main(["regrade", str(SAMPLE), "-o", str(out)]) == 0
    assert server.requests == []
    assert "21 judge-graded pairs kept as they were" in capsys.readouterr().err
    assert load_records(out) == before


def test_regrade_of_a_run_without_saved_answers_says_so(
    server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = subset(tmp_path, datasets={"trivia"})
    server.answer_key = load_answer_key(queries)
    out = tmp_path / "records.jsonl"
    assert cli(server, str(queries), "--models", "openai/gpt-5", "-o", str(out)) == 0
    assert main(["regrade", str(queries), "-o", str(out)]) == 0
    assert "9 pairs have no saved answer (calibrated without --save-answers)" in (
        capsys.readouterr().err
    )


def test_a_judge_query_without_a_judge_model_names_file_and_line(
    server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "records.jsonl"
    assert cli(server, str(SAMPLE), "--models", ",".join(POOL), "-o", str(out)) == 2
    assert f"{SAMPLE}:44: the judge grader needs a judge model" in capsys.readouterr().err
    assert server.requests == []


def test_dry_run_makes_no_request(server: OfflineOpenRouter, tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    args = [str(SAMPLE), "--models", ",".join(POOL), "-o", str(out), "--judge-model", JUDGE]
    assert cli(server, *args, "--dry-run") == 0
    assert server.requests == []
    assert not out.exists()


# ---------------------------------------------------------------------- failures and spend


def test_429_and_500_are_retried_and_counted(server: OfflineOpenRouter, tmp_path: Path) -> None:
    queries = subset(tmp_path, datasets={"trivia"})
    server.answer_key = load_answer_key(queries)
    server.faults.fail_next = {"openai/gpt-5": [429, 500, 503]}
    server.faults.retry_after = "0.01"
    api = ApiSettings(base_url=server.base_url, api_key="test-key", max_retries=3)
    out = tmp_path / "records.jsonl"
    run = calibrate(queries, ["openai/gpt-5"], out, api=api, concurrency=1, show_progress=False)
    assert run.complete
    assert run.failed == 0
    assert len(answer_requests(server)) == 9 + 3
    retries = [r.usages["openai/gpt-5"].model_extra["retries"] for r in load_records(out)]
    assert sorted(retries) == [0] * 8 + [3]


def test_failed_calls_are_absent_and_asked_again_next_run(
    server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = subset(tmp_path, datasets={"trivia"})
    server.answer_key = load_answer_key(queries)
    server.faults.fail_models = {"qwen/qwen3-235b-a22b-2507": 503}
    out = tmp_path / "records.jsonl"
    args = [str(queries), "--models", "openai/gpt-5,qwen/qwen3-235b-a22b-2507", "-o", str(out)]
    assert cli(server, *args, "--max-retries", "0") == 1
    err = capsys.readouterr().err
    assert "failed 9x qwen/qwen3-235b-a22b-2507: HTTP 503 InternalServerError" in err
    assert all(list(r.records) == ["openai/gpt-5"] for r in load_records(out))
    server.reset()
    server.answer_key = load_answer_key(queries)
    assert cli(server, *args) == 0
    assert {m for m, _ in answer_requests(server)} == {"qwen/qwen3-235b-a22b-2507"}
    assert len(answer_requests(server)) == 9


def test_max_spend_stops_below_the_cap(server: OfflineOpenRouter, tmp_path: Path) -> None:
    queries = subset(tmp_path, datasets={"trivia", "science-mc", "arithmetic", "writing"})
    server.answer_key = load_answer_key(queries)
    api = ApiSettings(base_url=server.base_url, api_key="test-key", max_retries=0)
    out = tmp_path / "records.jsonl"
    options: dict[str, Any] = {
        "api": api,
        "max_tokens": 400,
        "judge_model": JUDGE,
        "show_progress": False,
    }
    run = calibrate(queries, POOL, out, max_spend=0.05, **options)
    assert run.stop_reason == "max_spend"
    assert not run.complete
    records = load_records(out)
    billed = sum(
        (u.cost or 0) + ((u.model_extra or {}).get("judge_cost") or 0)
        for r in records
        for u in r.usages.values()
        if u is not None
    )
    assert billed == pytest.approx(run.spend)
    assert 0.025 < run.spend <= 0.05
    finish = calibrate(queries, POOL, out, **options)
    assert finish.complete
    assert finish.already_done == run.answered
    assert len(answer_requests(server)) == len(queries.read_text().splitlines()) * 3


def test_judge_cost_is_recorded_apart_and_counted(
    server: OfflineOpenRouter, tmp_path: Path
) -> None:
    queries = subset(tmp_path, datasets={"writing"})
    server.answer_key = load_answer_key(queries)
    api = ApiSettings(base_url=server.base_url, api_key="test-key")
    out = tmp_path / "records.jsonl"
    run = calibrate(queries, POOL[2:], out, api=api, judge_model=JUDGE, show_progress=False)
    usages = [r.usages[POOL[2]] for r in load_records(out)]
    judge_costs = [u.model_extra["judge_cost"] for u in usages if u]
    assert len(judge_costs) == 7
    assert all(c > 0 for c in judge_costs)
    assert run.spend_judge == pytest.approx(sum(judge_costs))
    assert run.spend_answers == pytest.approx(sum(u.cost for u in usages if u and u.cost))
    assert run.spend == pytest.approx(run.spend_answers + run.spend_judge)
    assert "judge $" in run.describe()


def test_an_answer_without_usage_cost_is_priced_from_the_catalog(
    server: OfflineOpenRouter, tmp_path: Path
) -> None:
    queries = subset(tmp_path, datasets={"science-mc"})
    server.answer_key = load_answer_key(queries)
    server.faults.omit_cost_models.add("anthropic/claude-sonnet-4.5")
    api = ApiSettings(base_url=server.base_url, api_key="test-key")
    out = tmp_path / "records.jsonl"
    calibrate(queries, ["anthropic/claude-sonnet-4.5"], out, api=api, show_progress=False)
    profile = bundled_catalog()["anthropic/claude-sonnet-4.5"]
    for record in load_records(out):
        usage = record.usages["anthropic/claude-sonnet-4.5"]
        assert usage is not None
        assert usage.model_extra["cost_source"] == "list_prices"
        listed = list_price_cost(profile, usage.prompt_tokens or 0, usage.completion_tokens or 0)
        assert usage.cost == pytest.approx(listed)


# ---------------------------------------------------------------------- shards


def without_latency(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        for usage in row["usages"].values():
            usage.pop("latency_s")
    return rows


def test_shards_partition_the_pairs_and_merge_rebuilds_the_whole(
    server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = subset(tmp_path, datasets={"trivia", "formats"})
    server.answer_key = load_answer_key(queries)
    models = ",".join(POOL)
    whole = tmp_path / "whole.jsonl"
    assert cli(server, str(queries), "--models", models, "-o", str(whole)) == 0
    shards = []
    for k in range(3):
        out = tmp_path / f"shard{k}.jsonl"
        shard = ["--shard", f"{k}/3"]
        assert cli(server, str(queries), "--models", models, "-o", str(out), *shard) == 0
        assert len(load_records(out)) > 0
        shards.append(out)
    pairs = [
        (row["index"], row["dataset"], model)
        for shard in shards
        for row in without_latency(shard)
        for model in row["records"]
    ]
    assert len(pairs) == len(set(pairs)) == 16 * 3
    merged = tmp_path / "merged.jsonl"
    assert main(["merge", *map(str, shards), "-o", str(merged), "--queries", str(queries)]) == 0
    assert "16 queries, 48 pairs (0 duplicates kept once)" in capsys.readouterr().out
    assert without_latency(merged) == without_latency(whole)
    again = tmp_path / "shard0-copy.jsonl"
    shutil.copy(shards[0], again)
    assert main(["merge", *map(str, shards), str(again), "-o", str(merged)]) == 0
    shard0_pairs = sum(len(r.records) for r in load_records(shards[0]))
    assert f"({shard0_pairs} duplicates kept once)" in capsys.readouterr().out
    # Two calibrations of the same pairs differ (latency at least): never silently mixed.
    assert main(["merge", str(whole), str(shards[0]), "-o", str(merged)]) == 2
    assert f"differs from {whole}" in capsys.readouterr().err


def test_a_refused_key_stops_the_run_with_one_error_line(
    server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = subset(tmp_path, datasets={"trivia", "science-mc"})
    server.answer_key = load_answer_key(queries)
    server.faults.fail_models = {"openai/gpt-5": 401}
    out = tmp_path / "records.jsonl"
    args = [str(queries), "--models", "openai/gpt-5", "-o", str(out), "--concurrency", "1"]
    assert cli(server, *args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("avengers: error: the API refused the run: HTTP 401")
    assert len(server.requests) == 1  # nothing more was launched after the refusal
    assert out.exists()


def test_a_failed_judge_call_fails_the_pair_once_and_counts_the_answer(
    server: OfflineOpenRouter, tmp_path: Path
) -> None:
    queries = subset(tmp_path, datasets={"writing"})
    server.answer_key = load_answer_key(queries)
    server.faults.fail_models = {JUDGE: 503}
    api = ApiSettings(base_url=server.base_url, api_key="test-key", max_retries=0)
    out = tmp_path / "records.jsonl"
    run = calibrate(queries, POOL[2:], out, api=api, judge_model=JUDGE, show_progress=False)
    assert (run.answered, run.failed) == (0, 7)
    assert run.failures == {
        f"{POOL[2]}: judge {JUDGE}: HTTP 503 InternalServerError: "
        f"No available provider could serve the request (model {JUDGE})": 7
    }
    assert run.spend_answers > 0
    assert run.spend_judge == 0
    assert out.read_text() == ""


def test_a_sandbox_failure_fails_the_pair_instead_of_scoring_zero(
    server: OfflineOpenRouter, tmp_path: Path
) -> None:
    line = json.loads(SAMPLE.read_text().splitlines()[28])
    assert line["dataset"] == "code"
    line["grader"]["timeout"] = 0.001  # too short for the interpreter to start
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps(line) + "\n")
    server.answer_key = load_answer_key(queries)
    api = ApiSettings(base_url=server.base_url, api_key="test-key")
    out = tmp_path / "records.jsonl"
    run = calibrate(queries, POOL[2:], out, api=api, show_progress=False)
    assert (run.answered, run.failed) == (0, 1)
    assert "SandboxError" in next(iter(run.failures))


def test_concurrency_is_bounded_overall_and_per_model(
    server: OfflineOpenRouter, tmp_path: Path
) -> None:
    queries = subset(tmp_path, datasets={"trivia", "science-mc"})
    server.answer_key = load_answer_key(queries)
    server.faults.delay_s = 0.02
    api = ApiSettings(base_url=server.base_url, api_key="test-key")
    out = tmp_path / "records.jsonl"
    options: dict[str, Any] = {"api": api, "show_progress": False}
    run = calibrate(queries, POOL, out, concurrency=5, per_model_concurrency=2, **options)
    assert run.complete
    assert 3 <= server.peak_in_flight["*"] <= 5  # several models at once, never more than 5
    assert max(server.peak_in_flight[m] for m in POOL) == 2


def test_a_call_that_times_out_fails_and_counts_as_possibly_billed(
    server: OfflineOpenRouter, tmp_path: Path
) -> None:
    queries = subset(tmp_path, datasets={"trivia"})
    queries.write_text(queries.read_text().splitlines()[0] + "\n")
    server.answer_key = load_answer_key(queries)
    server.faults.delay_s = 1.0
    api = ApiSettings(base_url=server.base_url, api_key="test-key", timeout=0.2, max_retries=1)
    out = tmp_path / "records.jsonl"
    run = calibrate(queries, POOL[2:], out, api=api, max_spend=1.0, show_progress=False)
    assert (run.answered, run.failed) == (0, 1)
    assert run.failures == {f"{POOL[2]}: timeout": 1}
    assert len(server.requests) == 2  # the first attempt and one retry
    assert run.spend == 0
    assert run.possibly_billed > 0
    assert "more for calls that timed out" in run.describe()


def test_a_key_echoed_in_an_error_body_never_reaches_stderr(
    server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = subset(tmp_path, datasets={"trivia"})
    server.answer_key = load_answer_key(queries)
    server.faults.echo_key = True
    server.faults.fail_models = {"qwen/qwen3-235b-a22b-2507": 503}
    out = tmp_path / "records.jsonl"
    args = [str(queries), "--models", "openai/gpt-5,qwen/qwen3-235b-a22b-2507", "-o", str(out)]
    assert cli(server, *args, "--max-retries", "0") == 1
    server.faults.fail_models = {"openai/gpt-5": 401}
    assert cli(server, str(queries), "--models", "openai/gpt-5", "-o", str(out)) == 0
    out.unlink()
    journal_path(out).unlink()
    assert cli(server, str(queries), "--models", "openai/gpt-5", "-o", str(out)) == 2
    err = capsys.readouterr().err
    assert "(key: <api key>)" in err
    assert "test-key" not in err


@pytest.mark.parametrize(
    ("billed", "why"), [(math.inf, "not finite"), (1e6, "exceeds"), ("1e3", "exceeds")]
)
def test_an_absurd_billed_cost_fails_its_pair_and_is_never_recorded(
    server: OfflineOpenRouter, tmp_path: Path, billed: Any, why: str
) -> None:
    queries = subset(tmp_path, datasets={"trivia"})
    server.answer_key = load_answer_key(queries)
    server.faults.cost_overrides["openai/gpt-5"] = billed
    api = ApiSettings(base_url=server.base_url, api_key="test-key", max_retries=0)
    out = tmp_path / "records.jsonl"
    models = ["openai/gpt-5", "qwen/qwen3-235b-a22b-2507"]
    run = calibrate(queries, models, out, api=api, show_progress=False)
    assert (run.answered, run.failed) == (9, 9)
    assert sum(run.failures.values()) == 9
    for reason in run.failures:
        assert reason.startswith("openai/gpt-5: RefusedCostError: refused the answer's usage.cost")
        assert why in reason
    assert run.spend < 0.01
    assert run.possibly_billed > 0, "the refused bills were still billed: counted as possible"
    text = out.read_text() + journal_path(out).read_text()
    assert "Infinity" not in text
    assert "1000000" not in text
    assert all(list(r.records) == ["qwen/qwen3-235b-a22b-2507"] for r in load_records(out))
    assert "spend $0.0" in run.describe()


@pytest.mark.parametrize("kind", ["html", "html_as_json", "json_error"])
def test_a_model_answering_http_200_with_a_broken_body_fails_its_pairs_only(
    server: OfflineOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    queries = subset(tmp_path, datasets={"trivia"})
    server.answer_key = load_answer_key(queries)
    server.faults.http200_bodies["openai/gpt-5"] = kind
    out = tmp_path / "records.jsonl"
    args = [str(queries), "--models", "openai/gpt-5,qwen/qwen3-235b-a22b-2507", "-o", str(out)]
    assert cli(server, *args) == 1
    err = capsys.readouterr().err
    assert "failed 9x openai/gpt-5: " in err
    assert "HTTP 200" in err
    assert all(list(r.records) == ["qwen/qwen3-235b-a22b-2507"] for r in load_records(out))


# ---------------------------------------------------------------------- spend cap vs. real bills

CHEAP = ["qwen/qwen3-235b-a22b-2507", "meta-llama/llama-3.1-8b-instruct"]


def dear_run(
    server: OfflineOpenRouter, tmp_path: Path, factor: float, cap: float, **options: Any
) -> Any:
    """A run at concurrency 32 against a provider billing ``factor`` times list price."""
    queries = subset(tmp_path, datasets={"trivia", "science-mc", "arithmetic"})
    server.answer_key = load_answer_key(queries)
    for model in CHEAP:
        server.faults.price_factor[model] = factor
    api = ApiSettings(base_url=server.base_url, api_key="test-key", max_retries=0)
    out = tmp_path / "records.jsonl"
    return calibrate(
        queries,
        CHEAP,
        out,
        api=api,
        concurrency=32,
        max_tokens=400,
        max_spend=cap,
        show_progress=False,
        **options,
    )


@pytest.mark.parametrize(("factor", "cap"), [(3.0, 0.0002), (50.0, 0.0005)])
def test_max_spend_holds_when_the_provider_bills_above_list_price(
    server: OfflineOpenRouter, tmp_path: Path, factor: float, cap: float
) -> None:
    run = dear_run(server, tmp_path, factor, cap=cap)
    assert run.answered > 0
    assert run.spend <= cap
    assert run.stop_reason == "max_spend"
    assert f"stopped before crossing --max-spend ${cap:g}" in run.describe()


def test_max_spend_holds_for_a_model_listed_free_but_billed(
    server: OfflineOpenRouter, tmp_path: Path
) -> None:
    free = {}
    for m in CHEAP:
        free[m] = {**bundled_catalog()[m], "input_usd_per_mtok": 0.0, "output_usd_per_mtok": 0.0}
    catalog = Catalog(_profiles=free, source="test", snapshot="now", origin="test")
    run = dear_run(server, tmp_path, 100.0, cap=0.001, catalog=catalog)
    assert run.answered > 0
    assert run.spend <= 0.001
    assert run.stop_reason == "max_spend"


def test_a_first_bill_above_the_cap_is_said_plainly(
    server: OfflineOpenRouter, tmp_path: Path
) -> None:
    run = dear_run(server, tmp_path, 20000.0, cap=0.0005)
    assert run.spend > 0.0005
    summary = run.describe()
    assert "stopped before crossing" not in summary
    assert "crossed --max-spend $0.0005" in summary
    assert "x its list price" in summary


def test_a_run_refused_because_another_holds_the_journal_leaves_its_records_alone(
    server: OfflineOpenRouter, tmp_path: Path
) -> None:
    queries = subset(tmp_path, datasets={"trivia"})
    server.answer_key = load_answer_key(queries)
    api = ApiSettings(base_url=server.base_url, api_key="test-key")
    out = tmp_path / "records.jsonl"
    calibrate(queries, POOL[2:], out, api=api, show_progress=False)
    out.write_text(out.read_text() + "\n")  # as another run would leave it mid-way
    before = (out.read_bytes(), out.stat().st_mtime_ns)
    with Journal(journal_path(out)), pytest.raises(StoreError, match="another run"):
        calibrate(queries, POOL, out, api=api, show_progress=False)
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before
    assert server.models_called() == [POOL[2]] * 9, "the refused run asked nothing"


def test_a_connection_error_names_the_url_not_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said only "connection error", leaving a wrong --base-url to guess."""
    secret = "sk-or-v1-calibration-secret-0123456789"
    monkeypatch.setenv("OPENROUTER_API_KEY", secret)
    base_url = f"http://127.0.0.1:{closed_port()}/api/v1"
    queries = subset(tmp_path, datasets={"trivia"})
    out = tmp_path / "records.jsonl"
    args = [str(queries), "--models", "openai/gpt-5", "-o", str(out), "--max-retries", "0"]
    assert main(["calibrate", *args, "--base-url", base_url]) == 1
    captured = capsys.readouterr()
    assert f"openai/gpt-5: connection error ({base_url}/chat/completions)" in captured.err
    assert secret not in captured.out + captured.err
