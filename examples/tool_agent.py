"""A tool-calling agent (``langchain.agents.create_agent``) on top of the router.

Every model call of the agent is routed on its own; with tools bound, only models whose
profile says ``tool_calling`` are candidates. Here the profile of Llama 3.1 8B is overridden
to say it has no tool support, so it is excluded, and each answer's metadata says why.

    OPENROUTER_API_KEY=sk-or-... python examples/tool_agent.py   # live, OpenRouter
    python examples/tool_agent.py --offline                      # local test server
"""

from __future__ import annotations

from _offline import chat_model, parse_args
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

UNITS_IN_METRES = {"km": 1000.0, "m": 1.0, "mi": 1609.344, "ft": 0.3048}
QUESTION = (
    "A runner does 3 laps of 2.5 miles. Use multiply to get the total distance, "
    "then convert_units to convert 7.5 from 'mi' to 'km'."
)


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


@tool
def convert_units(value: float, from_unit: str, to_unit: str) -> str:
    """Convert a length between units: km, m, mi or ft."""
    if from_unit not in UNITS_IN_METRES or to_unit not in UNITS_IN_METRES:
        return f"unknown unit; use one of {sorted(UNITS_IN_METRES)}"
    result = value * UNITS_IN_METRES[from_unit] / UNITS_IN_METRES[to_unit]
    return f"{value:g} {from_unit} = {result:.3f} {to_unit}"


def main() -> None:
    args = parse_args(__doc__)
    no_tools = {"meta-llama/llama-3.1-8b-instruct": {"tool_calling": False}}
    with chat_model(args.offline, alpha=0.3, profiles=no_tools) as llm:
        agent = create_agent(
            model=llm,
            tools=[multiply, convert_units],
            system_prompt="Use the tools for arithmetic and unit conversion.",
        )
        result = agent.invoke({"messages": [("user", QUESTION)]})

    print(f"Q: {QUESTION}\n")
    step = 0
    for message in result["messages"]:
        if message.type == "tool":
            print(f"  tool {message.name} -> {message.content}")
        if not isinstance(message, AIMessage):
            continue
        step += 1
        routing = message.response_metadata["avengers"]
        print(f"step {step}: served by {message.response_metadata['model_name']}")
        print(f"  cost ${routing['actual_cost']:.6f}, needs {routing['required_capabilities']}")
        for model, reason in routing["excluded"].items():
            print(f"  excluded: {model}: {reason}")
        for call in message.tool_calls:
            print(f"  calls {call['name']}({call['args']})")
    print(f"\nFinal answer: {result['messages'][-1].content}")


if __name__ == "__main__":
    main()
