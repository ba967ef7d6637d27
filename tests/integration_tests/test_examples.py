"""Every script in examples/ runs offline (``--offline``: the local OpenRouter-compatible server).

Each runs as a subprocess from the repository root, without an OpenRouter key and with LangSmith
tracing unset, and must exit 0 and print the routing it is there to show.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_avengers import load_default_router

pytestmark = pytest.mark.slow  # each example is a subprocess: `pytest -m slow`

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
POOL = load_default_router().models_
ANY_POOL_MODEL = "(" + "|".join(re.escape(m) for m in POOL) + ")"

# example -> patterns that must all appear in its stdout
EXPECTED: dict[str, list[str]] = {
    "lcel_budgets.py": [
        rf"thrifty +alpha=0\.2: {ANY_POOL_MODEL} +cost \$\d",
        rf"quality +alpha=0\.9: {ANY_POOL_MODEL} +cost \$\d",
        r"total cost, thrifty \(alpha=0\.2\): \$\d",
        r"total cost, quality \(alpha=0\.9\): \$\d",
    ],
    "tool_agent.py": [
        rf"step 1: served by {ANY_POOL_MODEL}",
        r"calls (multiply|convert_units)\(",
        r"tool (multiply|convert_units) -> ",
        r"excluded: meta-llama/llama-3\.1-8b-instruct: its profile says no tool_calling support",
        r"Final answer: \S",
    ],
    "structured_output.py": [
        r"method=function_calling",
        r"method=json_schema",
        r"parsed: City\(name=.*\(parsing error: None\)",
        rf"served by {ANY_POOL_MODEL} at alpha=0\.7",
    ],
    "learn_from_langsmith.py": [
        r"1-2\. traced 36 calls to project 'avengers-learning-[0-9a-f]{8}', feedback on 36",
        r"3\. harvest: 36 record\(s\) from 36 run\(s\)",
        r"4\. off-policy estimate at alpha=0\.9 on 36 logged queries",
        r"candidate \(doubly robust\): +accuracy -?\d",
        r"unreliable: ",
        r"5\. refitted on 36 logged queries",
    ],
    "langsmith_tracing.py": [
        r"trace 'avengers-demo' \(chain\)",
        rf"ls_provider=openrouter ls_model_name={ANY_POOL_MODEL}\n",
        r"avengers_alpha=0\.6",
        rf"avengers_candidates: {ANY_POOL_MODEL} \(\d+%, \$0\.0*[1-9]\d*/call\), ",
        rf"chosen model: {ANY_POOL_MODEL}",
        r"tokens: \d+ in, \d+ out; cost: \$\d\.\d{6} in \+ \$\d\.\d{6} out = \$0\.0000[1-9]",
        rf"event avengers_route on this run: model={ANY_POOL_MODEL}",
    ],
    "agent_middleware.py": [
        rf"turn 1 \(alpha 0\.9\): .*\n  served by {ANY_POOL_MODEL} at alpha=0\.9\n"
        r"    pinned: no \(routed\)",
        r"    pinned: turn; ",
        rf"turn spend: \$0\.\d*[1-9]\d* over 2 calls on {ANY_POOL_MODEL}",
        rf"turn 2 \(alpha 0\.1, same thread\): .*\n  served by {ANY_POOL_MODEL} at alpha=0\.1\n"
        rf"    pinned: conversation; router's own pick: {ANY_POOL_MODEL}",
        r"  stopped: Run budget reached: this run has spent \$0 of its max_run_cost",
    ],
    "agent_costs.py": [
        r"Q \(alpha=0\.2\): .*\nA: The multiply tool returned: 50\.0",
        rf"{ANY_POOL_MODEL}: \d+ tokens in, \d+ out, \$0\.0000[0-9]*[1-9]",
        r"agent total: \d+ tokens, \$0\.\d*[1-9]\d*",
    ],
}


def offline_env() -> dict[str, str]:
    """The current environment minus anything that could reach OpenRouter or LangSmith."""
    env = dict(os.environ)
    for name in (
        "OPENROUTER_API_KEY",
        "OPENROUTER_BASE_URL",
        "LANGSMITH_TRACING",
        "LANGCHAIN_TRACING_V2",
        "LANGCHAIN_TRACING",
    ):
        env.pop(name, None)
    return env


def test_every_example_is_tested() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_offline(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--offline"],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    for pattern in EXPECTED[script]:
        assert re.search(pattern, proc.stdout), f"{script}: no line matching {pattern!r} in\n" + (
            proc.stdout
        )
