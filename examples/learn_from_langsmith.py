"""Trace -> feedback -> harvest -> evaluate -> refit: a router that learns from LangSmith.

1. The chat model answers questions with exploration on (``explore=0.3``): most calls go to
   the router's choice, some to another capable model, and every run's metadata records the
   probability with which its model was chosen (``avengers_propensity``).
2. Each answer gets feedback under the key ``correct`` (here an exact-match check of the
   number asked for; in production: thumbs, an online evaluator, a human review).
3. ``harvest_traces`` reads the runs and their feedback back with the ``langsmith`` client and
   writes logged records: one model, its score, cost and propensity per question.
4. ``estimate_off_policy`` says what another alpha would have scored and cost on that traffic,
   with intervals and the diagnostics that tell when not to trust it.
5. A router is refitted on the logs, weighting each outcome by its inverse propensity.

    OPENROUTER_API_KEY=sk-or-... LANGSMITH_API_KEY=lsv2-... python examples/learn_from_langsmith.py
    python examples/learn_from_langsmith.py --offline   # local stand-ins of both services

Offline, the offline LangSmith and OpenRouter of ``langchain_avengers.testing`` are used;
their answers are canned, so most feedback is 0, but every step runs the real code and the
real ``langsmith`` client.
"""

from __future__ import annotations

import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import langsmith
from _offline import chat_model, parse_args
from langchain_core.tracers import LangChainTracer

from langchain_avengers import CalibrationData, ClusterRouter, load_default_router
from langchain_avengers.evaluation.off_policy import estimate_off_policy
from langchain_avengers.learning import harvest_traces

PAIRS = [(a, b) for a in range(3, 60, 7) for b in range(11, 40, 9)]
QUESTIONS = {f"What is {a} + {b}? Answer with the number only.": a + b for a, b in PAIRS}


@contextmanager
def langsmith_client(offline: bool) -> Iterator[langsmith.Client]:
    """The real client: against LangSmith, or against the local stand-in."""
    if not offline:
        client = langsmith.Client()  # LANGSMITH_API_KEY / LANGSMITH_ENDPOINT from the env
        yield client
        client.cleanup()
        return
    from langchain_avengers.testing import offline_langsmith

    with offline_langsmith() as stand_in:
        print(f"[offline] local LangSmith stand-in at {stand_in.base_url}")
        client = langsmith.Client(api_url=stand_in.base_url, api_key="offline-demo")
        yield client
        client.cleanup()


def main() -> None:
    args = parse_args(__doc__)
    project = f"avengers-learning-{uuid.uuid4().hex[:8]}"
    router = load_default_router()
    with langsmith_client(args.offline) as client, chat_model(args.offline, explore=0.3) as llm:
        # 1. trace the calls (exploring), 2. leave feedback on each run
        tracer = LangChainTracer(client=client, project_name=project)
        for question in QUESTIONS:
            llm.invoke(question, config={"callbacks": [tracer]})
        tracer.wait_for_futures()
        client.flush()
        scored = leave_feedback(client, project)
        print(f"1-2. traced {len(QUESTIONS)} calls to project {project!r}, feedback on {scored}")

        # 3. harvest
        harvest = harvest_traces(
            client, project_name=project, feedback_key="correct", router=router.data_fingerprint_
        )
        print(f"3. harvest: {harvest.report.describe()}")
        logged = CalibrationData.from_records(harvest.records)
        explored = sum(1 for r in harvest.records if next(iter(r.propensities.values())) < 0.5)
        print(f"   {explored} of them explored (propensity under 0.5)")

        # 4. off-policy: what would alpha=0.9 have done on this traffic?
        estimate = estimate_off_policy(router, logged, alpha=0.9)
        print("4. " + estimate.describe())

        # 5. refit on the logs (inverse-propensity weighted) and save
        refit = ClusterRouter(n_clusters=4, cluster_scales=(1.0,)).fit(logged)
        out = Path(tempfile.mkdtemp()) / "refit"
        refit.save(out)
        print(
            f"5. refitted on {refit.n_samples_fit_} logged queries "
            f"({', '.join(refit.models_)}); saved to {out}"
        )


def leave_feedback(client: langsmith.Client, project: str) -> int:
    """Exact-match feedback ``correct`` on every routed run of the project."""
    from langchain_avengers.learning.traces import latest_human_text, list_runs

    deadline = time.monotonic() + 30
    runs = []
    while time.monotonic() < deadline:  # LangSmith indexes runs within seconds
        runs = list(list_runs(client, project_name=project, run_type="llm"))
        if len(runs) >= len(QUESTIONS):
            break
        time.sleep(1)
    session = client.read_project(project_name=project).id
    for run in runs:
        question = latest_human_text((run.inputs or {}).get("messages"))
        answer = answer_text(run.outputs or {})
        expected = QUESTIONS.get(question)
        correct = expected is not None and re.search(rf"\b{expected}\b", answer) is not None
        client.create_feedback(run.id, key="correct", score=float(correct), session_id=session)
    return len(runs)


def answer_text(outputs: dict) -> str:
    """The answer's text in an LLM run's traced outputs."""
    try:
        message = outputs["generations"][0][0]["message"]
        return str(message.get("kwargs", message).get("content") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


if __name__ == "__main__":
    main()
