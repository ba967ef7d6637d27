"""Learning from LangSmith with the real ``langsmith`` client against the local stand-in.

Traced calls of an exploring chat model plus feedback become logged records with propensities;
experiments started with ``langsmith.evaluate`` (one per pool model) become calibration
records, resumably and under a spend cap.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import langsmith
import pytest
from langchain_core.tracers import LangChainTracer
from langsmith_server import LangSmithStandIn, serve
from local_chat import SECRET, make_llm

from langchain_avengers import CalibrationData, ClusterRouter, load_default_router
from langchain_avengers.learning import harvest_experiments, harvest_traces, run_experiments
from langchain_avengers.testing import OfflineOpenRouter

QUESTIONS = [
    "What is the capital of Australia?",
    "Prove that there are infinitely many primes.",
    "Write a Python function that reverses a string.",
    "How many minutes are there in a week?",
    "Summarise the causes of the French Revolution.",
    "Which is a mammal: shark, dolphin or trout?",
]


@pytest.fixture
def stand_in() -> Iterator[LangSmithStandIn]:
    with serve() as received:
        yield received


@pytest.fixture
def client(stand_in: LangSmithStandIn) -> Iterator[langsmith.Client]:
    client = langsmith.Client(api_url=stand_in.base_url, api_key="lsv2_pt_test-key")
    yield client
    client.cleanup()


def traced_calls(server: OfflineOpenRouter, client: langsmith.Client, **kwargs: Any) -> None:
    """Each question once through an exploring chat model, traced to project ``prod``."""
    tracer = LangChainTracer(client=client, project_name="prod")
    llm = make_llm(server, explore=1.0, **kwargs)
    for question in QUESTIONS:
        llm.invoke(question, config={"callbacks": [tracer]})
    llm.invoke("Pinned: say hi", model=llm.pool[0], config={"callbacks": [tracer]})
    tracer.wait_for_futures()
    client.flush()


def feedback(client: langsmith.Client, run_id: str, key: str, score: Any) -> None:
    """Feedback on a run of project ``prod``, as an application would leave it."""
    project = client.read_project(project_name="prod")
    client.create_feedback(run_id, key=key, score=score, session_id=project.id)


def llm_run_ids(stand_in: LangSmithStandIn) -> list[str]:
    return [rid for rid, run in stand_in.runs().items() if run.get("run_type") == "llm"]


def test_exploring_calls_and_feedback_become_logged_records(
    server: OfflineOpenRouter, stand_in: LangSmithStandIn, client: langsmith.Client
) -> None:
    traced_calls(server, client)
    runs = stand_in.runs()
    ids = llm_run_ids(stand_in)
    assert len(ids) == len(QUESTIONS) + 1
    routed = [r for r in ids if runs[r]["extra"]["metadata"]["avengers_routed"]]
    n_pool = len(load_default_router().models_)
    for run_id in routed:
        metadata = runs[run_id]["extra"]["metadata"]
        assert metadata["avengers_propensity"] == pytest.approx(1 / n_pool)  # explore=1: uniform
        assert metadata["avengers_explore"] == 1.0
    # feedback: three good runs, one off the scale (5 on a 0..1 key), one bool, one without
    for run_id, score in zip(routed, [1.0, 0.25, 0.5, 5.0, True], strict=False):
        feedback(client, run_id, "correctness", score)
    pinned = next(r for r in ids if r not in routed)
    feedback(client, pinned, "correctness", 1.0)
    fingerprint = load_default_router().data_fingerprint_

    harvest = harvest_traces(
        client, project_name="prod", feedback_key="correctness", router=fingerprint
    )

    assert harvest.report.runs == len(QUESTIONS) + 1
    assert harvest.report.skipped == {
        "feedback off the scale 0..1": 1,
        "no feedback": 1,
        "not chosen by the router (pinned or sticky)": 1,
    }
    records = {r.index: r for r in harvest.records}
    assert set(records) == set(routed[:3]) | {routed[4]}
    first = records[routed[0]]
    model = runs[routed[0]]["extra"]["metadata"]["avengers_model"]
    assert first.query == QUESTIONS[0]
    assert first.records == {model: 1.0}
    assert first.propensities == {model: pytest.approx(1 / n_pool)}
    assert first.cost_of(model) == pytest.approx(
        runs[routed[0]]["extra"]["metadata"]["usage_metadata"]["total_cost"]
    )
    assert records[routed[4]].records == {
        runs[routed[4]]["extra"]["metadata"]["avengers_model"]: 1.0
    }
    # the records load as logged data
    data = CalibrationData.from_records(harvest.records)
    assert data.logged_rows.all()


def test_other_routers_runs_and_a_wider_scale_are_reported(
    server: OfflineOpenRouter, stand_in: LangSmithStandIn, client: langsmith.Client
) -> None:
    traced_calls(server, client)
    for run_id in llm_run_ids(stand_in):
        feedback(client, run_id, "stars", 4)
    other = harvest_traces(client, project_name="prod", feedback_key="stars", router="0" * 16)
    assert other.records == []
    assert other.report.skipped == {"other router": len(QUESTIONS) + 1}
    rated = harvest_traces(client, project_name="prod", feedback_key="stars", scale=(1, 5))
    assert [next(iter(r.records.values())) for r in rated.records] == [0.75] * len(QUESTIONS)


def test_feedback_on_a_chains_root_scores_its_one_routed_call(
    server: OfflineOpenRouter, stand_in: LangSmithStandIn, client: langsmith.Client
) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    tracer = LangChainTracer(client=client, project_name="prod")
    chain = (
        ChatPromptTemplate.from_messages([("human", "{q}")]) | make_llm(server) | StrOutputParser()
    )
    chain.invoke({"q": QUESTIONS[1]}, config={"callbacks": [tracer]})
    tracer.wait_for_futures()
    client.flush()
    root = next(rid for rid, run in stand_in.runs().items() if run.get("parent_run_id") is None)
    feedback(client, root, "thumbs", 0)
    harvest = harvest_traces(client, project_name="prod", feedback_key="thumbs")
    (record,) = harvest.records
    assert record.query == QUESTIONS[1]
    assert list(record.records.values()) == [0.0]
    assert list(record.propensities.values()) == [1.0]  # no exploration: the router's choice


def length_evaluator(outputs: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """A code evaluator: 1 when the answer is longer than the question."""
    return {"key": "long_enough", "score": float(len(outputs["answer"]) > len(inputs["question"]))}


def test_experiments_run_per_model_resume_and_become_calibration_records(
    server: OfflineOpenRouter, stand_in: LangSmithStandIn, client: langsmith.Client
) -> None:
    stand_in.store.add_dataset(
        "questions", [{"inputs": {"question": q}, "outputs": {}} for q in QUESTIONS]
    )
    models = ["meta-llama/llama-3.1-8b-instruct", "google/gemini-2.5-flash"]
    first = run_experiments(
        client,
        dataset_name="questions",
        models=models,
        evaluators=[length_evaluator],
        base_url=server.base_url,
        api_key=SECRET,
    )
    client.flush()
    assert first.sent == {m: len(QUESTIONS) for m in models}
    assert first.spent > 0
    again = run_experiments(
        client,
        dataset_name="questions",
        models=models,
        evaluators=[length_evaluator],
        base_url=server.base_url,
        api_key=SECRET,
    )
    assert again.sent == dict.fromkeys(models, 0)  # resumed: every example done
    assert again.experiments == first.experiments

    harvest = harvest_experiments(client, dataset_name="questions", feedback_key="long_enough")

    assert harvest.report.records == len(QUESTIONS)
    data = CalibrationData.from_records(harvest.records)
    assert sorted(data.models) == sorted(models)
    assert not (data.scores != data.scores).any()  # every model scored on every example
    assert (data.costs > 0).all()
    assert {r.query for r in harvest.records} == set(QUESTIONS)
    with pytest.warns(UserWarning, match="median of 3 queries"):  # six examples: two clusters
        router = ClusterRouter(n_clusters=2, cluster_scales=(1.0,)).fit(data)
    assert router.models_ == data.models


def test_the_spend_cap_stops_before_any_call_and_leaves_the_rest_to_resume(
    server: OfflineOpenRouter, stand_in: LangSmithStandIn, client: langsmith.Client
) -> None:
    stand_in.store.add_dataset("questions", [{"inputs": {"question": q}} for q in QUESTIONS])
    capped = run_experiments(
        client,
        dataset_name="questions",
        models=["google/gemini-2.5-flash"],
        evaluators=[length_evaluator],
        base_url=server.base_url,
        api_key=SECRET,
        max_spend=0.0,
    )
    assert capped.sent == {"google/gemini-2.5-flash": 0}
    assert capped.incomplete == ["google/gemini-2.5-flash"]
    assert capped.spent == 0.0


def test_cli_harvests_traces_then_estimates_a_router_off_policy(
    server: OfflineOpenRouter,
    stand_in: LangSmithStandIn,
    client: langsmith.Client,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from langchain_avengers.cli.main import main

    traced_calls(server, client)
    for run_id in llm_run_ids(stand_in):
        feedback(client, run_id, "correctness", 1.0)
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2_pt_test-key")
    out = tmp_path / "logged.jsonl"
    status = main(
        [
            "harvest", "traces", "--project", "prod", "--feedback-key", "correctness",
            "--langsmith-url", stand_in.base_url, "-o", str(out),
        ]
    )  # fmt: skip
    assert status == 0
    err = capsys.readouterr().err
    assert f"{len(QUESTIONS)} record(s) from {len(QUESTIONS) + 1} run(s)" in err
    assert "1 not chosen by the router (pinned or sticky)" in err
    router_dir = tmp_path / "router"
    load_default_router().save(router_dir)
    status = main(["evaluate", str(out), "--router", str(router_dir), "--alpha", "0.5"])
    assert status == 0
    captured = capsys.readouterr()
    assert f"off-policy estimate at alpha=0.5 on {len(QUESTIONS)} logged queries" in captured.out
    assert "candidate (doubly robust)" in captured.out
    assert "too few explored calls" in captured.err  # six calls: flagged, not trusted
