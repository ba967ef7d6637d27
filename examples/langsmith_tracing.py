"""What a LangSmith trace of a routed call contains, shown without LangSmith.

Turn tracing on with three environment variables (nothing changes in the code):

    LANGSMITH_TRACING=true          send every run to LangSmith
    LANGSMITH_API_KEY=lsv2_...      your LangSmith key
    LANGSMITH_PROJECT=avengers      project the runs go to (default: "default")

The model's run is opened with the routed model as ``ls_model_name`` (``ls_provider`` is
"openrouter"), and the decision is in the run's metadata under flat keys LangSmith can filter
on (``avengers_model``, ``avengers_alpha``, ``avengers_candidates``, ``avengers_excluded``...).
The answer's ``usage_metadata`` carries tokens and ``input_cost``/``output_cost``/
``total_cost`` in USD, which LangSmith shows as the run's cost. Here ``collect_runs()``
captures the same run tree locally. With ``--offline`` tracing is forced off, so LangSmith is
never contacted.

    OPENROUTER_API_KEY=sk-or-... LANGSMITH_TRACING=true LANGSMITH_API_KEY=lsv2-... \\
        python examples/langsmith_tracing.py            # live, traced to LangSmith
    python examples/langsmith_tracing.py --offline      # local test server, no LangSmith
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import langsmith
from _offline import chat_model, parse_args
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tracers.context import collect_runs
from langchain_core.tracers.langchain import wait_for_all_tracers

from langchain_avengers.chat_models.base import ROUTE_EVENT
from langchain_avengers.chat_models.costs import format_usd


class RouteEvents(BaseCallbackHandler):
    """Collects ``avengers_route`` events with the id of the run they belong to."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, dict[str, Any]]] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: Any, **kwargs: Any) -> None:
        if name == ROUTE_EVENT:
            self.events.append((run_id, data))


def main() -> None:
    args = parse_args(__doc__)
    tracing = langsmith.tracing_context(enabled=False) if args.offline else nullcontext()
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    with tracing, chat_model(args.offline, alpha=0.6) as llm:
        if langsmith.utils.tracing_is_enabled():
            print(f"tracing to LangSmith project {langsmith.utils.get_tracer_project()!r}")
        chain = prompt | llm | StrOutputParser()
        events = RouteEvents()
        with collect_runs() as collector:
            chain.invoke(
                {"question": "Explain why the sky is blue in two sentences."},
                config={
                    "run_name": "avengers-demo",
                    "callbacks": [events],
                    "metadata": {"budget": "balanced"},
                },
            )
        wait_for_all_tracers()  # live: flush the background upload to LangSmith

    root = collector.traced_runs[0]
    print(f"trace {root.name!r} ({root.run_type}), output: {root.outputs['output'][:60]!r}...")
    for run in root.child_runs:
        meta = run.extra.get("metadata", {})
        print(f"  run {run.name!r} ({run.run_type})")
        if run.run_type != "llm":
            continue
        answer = run.outputs["generations"][0][0]["message"]["kwargs"]
        usage = answer["usage_metadata"]
        print(f"    ls_provider={meta['ls_provider']} ls_model_name={meta['ls_model_name']}")
        print(f"    metadata budget={meta['budget']}, avengers_alpha={meta['avengers_alpha']}")
        ranking = ", ".join(
            f"{c['model']} ({100 * c['expected_accuracy']:.0f}%, "
            f"{format_usd(c['expected_cost'])}/call)"
            for c in meta["avengers_candidates"]
        )
        print(f"    avengers_candidates: {ranking}")
        print(f"    avengers_excluded: {meta['avengers_excluded'] or 'none'}")
        print(f"    chosen model: {answer['response_metadata']['model_name']}")
        print(
            f"    tokens: {usage['input_tokens']} in, {usage['output_tokens']} out; cost: "
            f"${usage['input_cost']:.6f} in + ${usage['output_cost']:.6f} out = "
            f"${usage['total_cost']:.6f} ({answer['response_metadata']['avengers']['cost_source']})"
        )
        for run_id, data in events.events:
            where = "this run" if run_id == run.id else f"run {run_id}"
            print(
                f"    event {ROUTE_EVENT} on {where}: model={data['model']}, "
                f"alpha={data['alpha']}, clusters={[c['cluster'] for c in data['clusters']]}"
            )


if __name__ == "__main__":
    main()
