"""Calibration records from LangSmith experiments: one experiment per pool model, one dataset.

A team with a LangSmith dataset and evaluators already has what calibration needs: run each
pool model on the dataset (an experiment per model), score the answers with the evaluators,
and every example becomes a query with every model's score (one feedback key, normalised to
[0, 1]) and cost (the run's usage). :func:`harvest_experiments` reads existing experiments;
:func:`run_experiments` (in :mod:`langchain_avengers.learning.runner`) starts the missing ones.

An experiment's model is given by the caller (``{experiment name: model}``), or read from
the experiment's metadata (``avengers_model``, which :func:`run_experiments` sets, else
``model`` or ``ls_model_name``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_avengers.learning.traces import (
    Harvest,
    HarvestReport,
    check_scale,
    feedback_for,
    list_runs,
    normalised_scores,
)
from langchain_avengers.records.format import CalibrationRecord

__all__ = ["MODEL_KEYS", "example_text", "experiment_model", "harvest_experiments"]

MODEL_KEYS = ("avengers_model", "model", "ls_model_name")
"""Experiment metadata keys naming the model an experiment ran, first found wins."""
INPUT_KEYS = ("question", "query", "input", "prompt", "text")


def experiment_model(project: Any) -> str | None:
    """The pool model an experiment ran, from its metadata (see :data:`MODEL_KEYS`)."""
    metadata = (getattr(project, "extra", None) or {}).get("metadata") or {}
    for key in MODEL_KEYS:
        if isinstance(metadata.get(key), str):
            return str(metadata[key])
    return None


def example_text(inputs: Mapping[str, Any], input_key: str | None, where: str) -> str:
    """The query text of an example's inputs.

    Args:
        inputs: The example's inputs.
        input_key: The key holding the text; ``None`` takes the only string input, else the
            first of ``question``, ``query``, ``input``, ``prompt``, ``text``.
        where: Names the example in errors.

    Raises:
        ValueError: no such key, or no way to tell which input is the query.
    """
    if input_key is not None:
        value = inputs.get(input_key)
        if not isinstance(value, str) or not value.strip():
            msg = (
                f"{where}: input {input_key!r} is not a non-empty string (inputs: {sorted(inputs)})"
            )
            raise ValueError(msg)
        return value
    strings = {k: v for k, v in inputs.items() if isinstance(v, str) and v.strip()}
    if len(strings) == 1:
        return next(iter(strings.values()))
    for key in INPUT_KEYS:
        if key in strings:
            return strings[key]
    msg = f"{where}: cannot tell which input is the query among {sorted(inputs)}; pass input_key"
    raise ValueError(msg)


def _experiments_of(
    client: Any, experiments: Mapping[str, str] | Sequence[str] | None, dataset_name: str | None
) -> list[tuple[Any, str | None]]:
    """``(project, model)`` of each experiment asked for (or of the dataset's experiments)."""
    if experiments is None:
        if dataset_name is None:
            msg = "give experiments ({name: model} or names) or dataset_name"
            raise ValueError(msg)
        projects = list(client.list_projects(reference_dataset_name=dataset_name))
        return [(p, experiment_model(p)) for p in projects]
    named = experiments if isinstance(experiments, Mapping) else dict.fromkeys(experiments)
    found = []
    for name, model in named.items():
        project = client.read_project(project_name=name)
        found.append((project, model or experiment_model(project)))
    return found


def harvest_experiments(
    client: Any,
    experiments: Mapping[str, str] | Sequence[str] | None = None,
    *,
    dataset_name: str | None = None,
    feedback_key: str,
    input_key: str | None = None,
    scale: Sequence[float] = (0.0, 1.0),
) -> Harvest:
    """Calibration records from experiments of several models over one LangSmith dataset.

    Args:
        client: A ``langsmith.Client``.
        experiments: ``{experiment name: model id}``, or experiment names whose metadata names
            the model; ``None``: every experiment on ``dataset_name``.
        dataset_name: The dataset, when ``experiments`` is ``None``.
        feedback_key: The evaluator's feedback key that scores an answer.
        input_key: The example input holding the query text (see :func:`example_text`).
        scale: ``(low, high)`` of the feedback scores, mapped onto [0, 1].

    Returns:
        One record per example with at least one scored model (``index`` the example id,
        ``dataset`` the dataset name), and the report of the runs left out (failed runs,
        runs without feedback or off the scale, experiments of an unknown model or a model
        already harvested from a newer experiment).

    Raises:
        ValueError: experiments over different datasets, a bad ``scale`` or input.
        langsmith.utils.LangSmithNotFoundError: an experiment or dataset that does not exist.
    """
    low_high = check_scale(scale)
    report = HarvestReport()
    chosen: dict[str, Any] = {}
    for project, model in sorted(
        _experiments_of(client, experiments, dataset_name),
        key=lambda pm: str(pm[0].start_time),
        reverse=True,  # newest first: an older experiment of the same model is left out
    ):
        if model is None:
            report.skip(f"experiment {project.name!r} names no model")
        elif model in chosen:
            report.skip(f"older experiment {project.name!r} of {model}")
        else:
            chosen[model] = project
    datasets = {str(p.reference_dataset_id) for p in chosen.values()}
    if len(datasets) > 1:
        msg = f"experiments: they ran over {len(datasets)} different datasets; harvest one dataset"
        raise ValueError(msg)
    if not chosen:
        return Harvest(records=[], report=report)
    dataset_id = datasets.pop()
    dataset = client.read_dataset(dataset_id=dataset_id)
    examples = {str(e.id): e for e in client.list_examples(dataset_id=dataset_id)}
    scores: dict[str, dict[str, float]] = {}
    usages: dict[str, dict[str, dict[str, Any]]] = {}
    for model, project in chosen.items():
        runs = {}
        for run in list_runs(client, project_id=project.id, is_root=True):
            report.runs += 1
            if run.error:
                report.skip("failed run")
            elif str(run.reference_example_id) not in examples:
                report.skip("run of no example of the dataset")
            else:
                runs[str(run.id)] = run
        found = normalised_scores(feedback_for(client, list(runs), feedback_key), low_high)
        for run_id, run in runs.items():
            score = found.get(run_id, "missing")
            if score == "missing":
                report.skip("no feedback")
            elif score is None:
                report.skip(f"feedback off the scale {low_high[0]:g}..{low_high[1]:g}")
            else:
                example = str(run.reference_example_id)
                scores.setdefault(example, {})[model] = float(score)
                usages.setdefault(example, {})[model] = _run_usage(run)
    records = [
        CalibrationRecord(
            query=example_text(examples[eid].inputs or {}, input_key, f"example {eid}"),
            records=scores[eid],  # type: ignore[arg-type]
            usages=usages[eid],  # type: ignore[arg-type]
            dataset=dataset.name,
            index=eid,
        )
        for eid in examples
        if eid in scores
    ]
    report.records = len(records)
    return Harvest(records=records, report=report)


def _run_usage(run: Any) -> dict[str, Any]:
    """An experiment run's cost and tokens: the target's reported usage, else the run's totals."""
    reported = (run.outputs or {}).get("usage") if isinstance(run.outputs, dict) else None
    usage = dict(reported) if isinstance(reported, dict) else {}
    if usage.get("cost") is None and run.total_cost is not None:
        usage["cost"] = float(run.total_cost)
    if usage.get("prompt_tokens") is None and run.prompt_tokens is not None:
        usage["prompt_tokens"] = int(run.prompt_tokens)
    if usage.get("completion_tokens") is None and run.completion_tokens is not None:
        usage["completion_tokens"] = int(run.completion_tokens)
    return usage
