"""Logged records from the chat model's LangSmith traces and their feedback.

Every call of :class:`~langchain_avengers.AvengersChatModel` traced to LangSmith is an LLM run
whose metadata holds the decision (``avengers_model``, ``avengers_propensity``,
``avengers_router``...) and whose usage holds the cost. Feedback on the run (or on the root
of its trace, when the trace has one routed call) under one key, normalised from its scale to
[0, 1], is the answer's score. Each such run becomes a logged record: its query (the latest
human message, as routing read it), one model, its score, its cost and its propensity.

Runs that cannot be used honestly are counted by reason, never mixed in: no feedback, a
feedback score off the stated scale (or with no score), another router's runs (fingerprint),
calls the router did not choose (a pinned model, a sticky conversation), calls that fell back
to another model, failed calls, and runs whose query text or cost is missing.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_avengers.policies.routing_text import routing_text
from langchain_avengers.records.format import CalibrationRecord

__all__ = [
    "FEEDBACK_BATCH",
    "Harvest",
    "HarvestReport",
    "harvest_traces",
    "latest_human_text",
    "list_runs",
    "normalised_scores",
]

FEEDBACK_BATCH = 100
"""Run ids per ``list_feedback`` request."""
SCALE_TOLERANCE = 1e-9


@dataclass
class HarvestReport:
    """How many runs were read, how many became records, and why the others did not."""

    runs: int = 0
    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    """Reason to number of runs left out."""

    def skip(self, reason: str) -> None:
        """Count one run left out for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def describe(self) -> str:
        """One line for people."""
        left = "; ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return f"{self.records} record(s) from {self.runs} run(s)" + (
            f"; left out: {left}" if left else ""
        )


@dataclass
class Harvest:
    """Records harvested from LangSmith, and the report of what was left out."""

    records: list[CalibrationRecord]
    report: HarvestReport


def list_runs(client: Any, **query: Any) -> Iterator[Any]:
    """``client.list_runs(**query)`` without its deprecation notice (kept until 2027).

    ``POST /runs/query`` is what self-hosted LangSmith before v0.16 serves too; its successor
    (``client.runs.query_v2``) is not there.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"list_runs\(\) is deprecated")
        runs = client.list_runs(**query)
    yield from runs


def normalised_scores(
    feedback: Iterable[Any], scale: tuple[float, float]
) -> dict[str, float | None]:
    """Mean normalised score per run id; ``None`` for a run whose feedback is off the scale.

    Args:
        feedback: ``langsmith`` Feedback objects (``run_id``, ``score``).
        scale: ``(low, high)`` of the feedback key; scores map linearly onto [0, 1].
    """
    low, high = scale
    found: dict[str, list[float | None]] = {}
    for item in feedback:
        score = item.score
        value: float | None
        if isinstance(score, bool):
            value = float(score)
        elif isinstance(score, (int, float)):
            value = (float(score) - low) / (high - low)
            if not -SCALE_TOLERANCE <= value <= 1 + SCALE_TOLERANCE:
                value = None
            else:
                value = min(max(value, 0.0), 1.0)
        else:
            value = None
        found.setdefault(str(item.run_id), []).append(value)
    means: dict[str, float | None] = {}
    for run, values in found.items():
        known = [v for v in values if v is not None]
        means[run] = sum(known) / len(known) if len(known) == len(values) else None
    return means


def check_scale(scale: Sequence[float]) -> tuple[float, float]:
    """``(low, high)`` with ``low < high``, finite.

    Raises:
        ValueError: anything else, naming the argument.
    """
    if len(scale) != 2 or not float(scale[0]) < float(scale[1]):
        msg = f"scale: expected (low, high) with low < high, got {tuple(scale)!r}"
        raise ValueError(msg)
    return float(scale[0]), float(scale[1])


def feedback_for(client: Any, run_ids: Sequence[str], key: str) -> Iterator[Any]:
    """Feedback under ``key`` on any of ``run_ids``, in batches of :data:`FEEDBACK_BATCH`."""
    for start in range(0, len(run_ids), FEEDBACK_BATCH):
        yield from client.list_feedback(
            run_ids=list(run_ids[start : start + FEEDBACK_BATCH]), feedback_key=[key]
        )


def harvest_traces(
    client: Any,
    *,
    project_name: str,
    feedback_key: str,
    start_time: datetime.datetime | None = None,
    end_time: datetime.datetime | None = None,
    router: str | None = None,
    scale: Sequence[float] = (0.0, 1.0),
) -> Harvest:
    """Logged records from a project's routed calls and their feedback under ``feedback_key``.

    Args:
        client: A ``langsmith.Client``.
        project_name: The LangSmith project the chat model traced to.
        feedback_key: The feedback key that scores an answer (``"correctness"``,
            ``"user_score"``...).
        start_time: Only runs started at or after this time.
        end_time: Only runs started before this time.
        router: Only runs of the router with this data fingerprint
            (``ClusterRouter.data_fingerprint_``; runs of others are counted as "other
            router"); ``None`` keeps every router's, which is only sound when one router
            produced all of them.
        scale: ``(low, high)`` of the feedback key's scores, mapped onto [0, 1]; booleans
            count as 0 and 1. A score outside it is counted as "feedback off the scale".

    Returns:
        The records (one per usable run, indexed by run id, ``dataset`` the project name) and
        the report of the runs left out.

    Raises:
        ValueError: a bad ``scale``, or ``end_time`` before ``start_time``.
    """
    low_high = check_scale(scale)
    if start_time and end_time and end_time < start_time:
        msg = f"end_time {end_time.isoformat()} is before start_time {start_time.isoformat()}"
        raise ValueError(msg)
    conditions = ['eq(metadata_key, "avengers_model")']
    if end_time is not None:
        conditions.append(f'lt(start_time, "{end_time.isoformat()}")')
    query: dict[str, Any] = {
        "project_name": project_name,
        "run_type": "llm",
        "filter": conditions[0] if len(conditions) == 1 else f"and({', '.join(conditions)})",
    }
    if start_time is not None:
        query["start_time"] = start_time
    report = HarvestReport()
    usable: dict[str, tuple[Any, dict[str, Any]]] = {}
    per_trace: dict[str, list[str]] = {}
    for run in list_runs(client, **query):
        report.runs += 1
        metadata = dict((run.extra or {}).get("metadata") or {})
        per_trace.setdefault(str(run.trace_id), []).append(str(run.id))
        reason = _unusable(run, metadata, router)
        if reason is not None:
            report.skip(reason)
            continue
        usable[str(run.id)] = (run, metadata)
    scores = _scores(client, usable, per_trace, feedback_key, low_high, report)
    records = []
    for run_id, (run, metadata) in usable.items():
        if run_id not in scores:
            report.skip("no feedback")
            continue
        score = scores[run_id]
        if score is None:
            report.skip(f"feedback off the scale {low_high[0]:g}..{low_high[1]:g}")
            continue
        model = str(metadata["avengers_model"])
        records.append(
            CalibrationRecord(
                query=_query_text(run),
                records={model: score},
                usages={model: _usage(run, metadata)},  # type: ignore[dict-item]
                propensities={model: float(metadata["avengers_propensity"])},
                dataset=project_name,
                index=run_id,
            )
        )
    report.records = len(records)
    return Harvest(records=records, report=report)


def _unusable(run: Any, metadata: Mapping[str, Any], router: str | None) -> str | None:
    """Why a routed run cannot become a logged record, or None."""
    if run.error:
        return "failed call"
    if router is not None and metadata.get("avengers_router") != router:
        return "other router"
    propensity = metadata.get("avengers_propensity")
    if not metadata.get("avengers_routed", False) or propensity is None:
        return "not chosen by the router (pinned or sticky)"
    if not isinstance(propensity, (int, float)) or not 0 < propensity <= 1:
        return "propensity missing or out of (0, 1]"
    answered = _answering_model(run)
    if answered is not None and answered != metadata.get("avengers_model"):
        return "fell back to another model"
    if not _query_text(run).strip():
        return "no query text in the run's inputs"
    if _usage(run, metadata).get("cost") is None:
        return "no cost in the run's usage"
    return None


def _scores(
    client: Any,
    usable: Mapping[str, tuple[Any, dict[str, Any]]],
    per_trace: Mapping[str, list[str]],
    key: str,
    scale: tuple[float, float],
    report: HarvestReport,
) -> dict[str, float | None]:
    """Normalised score per usable run: feedback on the run, else on its trace's root.

    Feedback on a trace's root is used only when the trace has exactly one routed run (the
    score of a chain or agent answer that made several model calls belongs to none of them).
    """
    run_ids = list(usable)
    own = normalised_scores(feedback_for(client, run_ids, key), scale)
    roots = {
        str(run.trace_id): run_id
        for run_id, (run, _) in usable.items()
        if run_id not in own and str(run.trace_id) != run_id
    }
    on_roots = normalised_scores(feedback_for(client, list(roots), key), scale)
    for trace, score in on_roots.items():
        if len(per_trace.get(trace, ())) == 1:
            own[roots[trace]] = score
        else:
            report.skip("feedback on a trace with several routed calls")
    return own


def _usage(run: Any, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Cost and tokens of a run: the tracer's usage summary, else the run's totals."""
    usage = dict(metadata.get("usage_metadata") or {})
    cost = usage.get("total_cost", run.total_cost)
    out: dict[str, Any] = {"cost": None if cost is None else float(cost)}
    prompt = usage.get("input_tokens", run.prompt_tokens)
    completion = usage.get("output_tokens", run.completion_tokens)
    if prompt is not None and completion is not None:
        out.update(prompt_tokens=int(prompt), completion_tokens=int(completion))
    return out


def _answering_model(run: Any) -> str | None:
    """The model that wrote the answer, from the run's outputs (None when not recorded)."""
    try:
        message = run.outputs["generations"][0][0]["message"]
    except (KeyError, IndexError, TypeError):
        return None
    kwargs = message.get("kwargs", message) if isinstance(message, dict) else {}
    model = (kwargs.get("response_metadata") or {}).get("model_name")
    return model if isinstance(model, str) else None


def _query_text(run: Any) -> str:
    return latest_human_text((run.inputs or {}).get("messages"))


def latest_human_text(messages: Any) -> str:
    """The latest human message of an LLM run's traced inputs, as routing read it.

    Accepts LangChain's serialised messages (``{"lc": 1, "id": [..., "HumanMessage"],
    "kwargs": {...}}``), ``{"role": ..., "content": ...}`` and ``{"type": ..., "content":
    ...}`` dicts, as one list or a list of lists (a batch).
    """
    if isinstance(messages, list) and messages and isinstance(messages[0], list):
        messages = messages[0]
    if not isinstance(messages, list):
        return ""
    parsed = [m for m in (_message(raw) for raw in messages) if m is not None]
    return routing_text(parsed, "latest_human") if parsed else ""


def _message(raw: Any) -> BaseMessage | None:
    if not isinstance(raw, dict):
        return None
    fields = raw.get("kwargs", raw) if raw.get("lc") else raw
    kind = str(fields.get("type") or fields.get("role") or "")
    if raw.get("lc") and not kind:
        kind = str((raw.get("id") or [""])[-1])
    content = fields.get("content", "")
    if not isinstance(content, (str, list)):
        return None
    kinds: dict[str, type[BaseMessage]] = {
        "human": HumanMessage,
        "user": HumanMessage,
        "HumanMessage": HumanMessage,
        "system": SystemMessage,
        "SystemMessage": SystemMessage,
    }
    return kinds.get(kind, AIMessage)(content=content)
