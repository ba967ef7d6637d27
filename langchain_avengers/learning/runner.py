"""Start the experiments calibration needs: each pool model on a LangSmith dataset.

:func:`run_experiments` runs ``langsmith.evaluate`` once per model, with the model (through
OpenRouter or a compatible server) as the target and the user's evaluators, so each model gets
an experiment whose runs carry the answer's cost (``outputs["usage"]``) and whose feedback
carries the evaluators' scores; :func:`~langchain_avengers.learning.experiments.harvest_experiments`
turns them into calibration records.

Resume: a model's experiment is found again by its metadata (``avengers_model``, and the
``avengers_experiment`` tag the prefix gives), and only the examples without a successful run
in it are sent. Spend cap: after every batch of examples the USD billed so far (over every
model) is checked against ``max_spend``; once reached, no further call is made (a call already
in flight may still be billed) and the result says which models are incomplete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import HumanMessage
from pydantic import SecretStr

from langchain_avengers.chat_models.clients import new_client
from langchain_avengers.learning.experiments import example_text, experiment_model
from langchain_avengers.learning.traces import list_runs

__all__ = ["BATCH_EXAMPLES", "ExperimentRuns", "SpendCapReachedError", "run_experiments"]

BATCH_EXAMPLES = 20
"""Examples per ``langsmith.evaluate`` call: the spend cap is checked between batches."""


class SpendCapReachedError(RuntimeError):
    """The spend cap was reached; the example was not sent (it stays to do on resume)."""


@dataclass
class ExperimentRuns:
    """What :func:`run_experiments` did."""

    experiments: dict[str, str] = field(default_factory=dict)
    """Model to the name of its experiment."""
    sent: dict[str, int] = field(default_factory=dict)
    """Model to the examples sent in this call (resumed ones not counted)."""
    incomplete: list[str] = field(default_factory=list)
    """Models with examples left to do (the spend cap was reached)."""
    spent: float = 0.0
    """USD billed by the targets in this call."""

    def describe(self) -> str:
        """One line for people."""
        sent = ", ".join(f"{m}: {n}" for m, n in self.sent.items())
        left = f"; incomplete (spend cap): {', '.join(self.incomplete)}" if self.incomplete else ""
        return f"examples sent per model: {sent}; ${self.spent:.4g} spent{left}"


def _existing(client: Any, dataset_name: str, model: str, prefix: str) -> Any | None:
    """The newest experiment of ``model`` on the dataset that this prefix started."""
    found = [
        p
        for p in client.list_projects(reference_dataset_name=dataset_name)
        if experiment_model(p) == model
        and ((p.extra or {}).get("metadata") or {}).get("avengers_experiment") == prefix
    ]
    return max(found, key=lambda p: str(p.start_time)) if found else None


def run_experiments(
    client: Any,
    *,
    dataset_name: str,
    models: Sequence[str],
    evaluators: Sequence[Callable[..., Any]],
    input_key: str | None = None,
    experiment_prefix: str = "avengers",
    max_spend: float | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    max_tokens: int | None = None,
) -> ExperimentRuns:
    """Run every pool model on a LangSmith dataset as its own experiment, resumably.

    Args:
        client: A ``langsmith.Client``.
        dataset_name: The dataset whose examples are the queries.
        models: OpenRouter model ids (the pool).
        evaluators: ``langsmith.evaluate`` evaluators (their feedback keys score answers).
        input_key: The example input holding the query text (see ``example_text``).
        experiment_prefix: Prefix of the experiment names; also how a resumed run finds its
            experiments again.
        max_spend: USD over all models at which no further example is sent.
        base_url: OpenRouter-compatible API; default ``$OPENROUTER_BASE_URL`` or OpenRouter.
        api_key: Default ``$OPENROUTER_API_KEY``.
        max_tokens: Output token cap per answer.

    Raises:
        ValueError: no models, a negative ``max_spend``, or no API key.
    """
    from langsmith import evaluate

    if not models:
        msg = "models: give at least one pool model"
        raise ValueError(msg)
    if max_spend is not None and max_spend < 0:
        msg = f"max_spend must be non-negative, got {max_spend!r}"
        raise ValueError(msg)
    key = api_key or os.environ.get("OPENROUTER_API_KEY")
    if not key:
        msg = "api_key: no OpenRouter API key; pass api_key=... or set OPENROUTER_API_KEY"
        raise ValueError(msg)
    url = base_url or os.environ.get("OPENROUTER_BASE_URL") or "https://openrouter.ai/api/v1"
    examples = list(client.list_examples(dataset_name=dataset_name))
    result = ExperimentRuns()
    for model in models:
        chat = new_client(
            model,
            {},
            base_url=url,
            api_key=SecretStr(key),
            sampling={"max_tokens": max_tokens, "request_timeout": 120.0},
        )

        def target(inputs: dict[str, Any], chat: Any = chat) -> dict[str, Any]:
            if max_spend is not None and result.spent >= max_spend:
                msg = f"max_spend ${max_spend:g} reached"
                raise SpendCapReachedError(msg)
            answer = chat.invoke([HumanMessage(example_text(inputs, input_key, "example"))])
            usage = dict(answer.response_metadata.get("token_usage") or {})
            cost = usage.get("cost", answer.response_metadata.get("openrouter_cost"))
            result.spent += float(cost or 0.0)
            return {
                "answer": answer.text,
                "usage": {
                    "cost": cost,
                    "prompt_tokens": usage.get("prompt_tokens"),
                    "completion_tokens": usage.get("completion_tokens"),
                },
            }

        experiment = _existing(client, dataset_name, model, experiment_prefix)
        done = set()
        if experiment is not None:
            done = {
                str(r.reference_example_id)
                for r in list_runs(client, project_id=experiment.id, is_root=True)
                if not r.error
            }
        todo = [e for e in examples if str(e.id) not in done]
        result.sent[model] = 0
        for start in range(0, len(todo), BATCH_EXAMPLES):
            if max_spend is not None and result.spent >= max_spend:
                result.incomplete.append(model)
                break
            batch = todo[start : start + BATCH_EXAMPLES]
            results = evaluate(
                target,
                data=batch,
                evaluators=list(evaluators),
                client=client,
                experiment=experiment,
                experiment_prefix=None if experiment else f"{experiment_prefix}-{model}",
                metadata=None
                if experiment
                else {"avengers_model": model, "avengers_experiment": experiment_prefix},
                max_concurrency=0,
                blocking=True,
            )
            experiment = experiment or client.read_project(project_name=results.experiment_name)
            result.sent[model] += len(batch)
        if experiment is not None:
            result.experiments[model] = experiment.name
    return result
