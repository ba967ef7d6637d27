"""A ``create_agent`` agent routed by AvengersMiddleware: one model per turn, pins, run budgets.

The middleware routes every model call of the agent. The tool loop of one human turn stays on
the model chosen for its first call; with ``pin_conversations=True`` the next turn of the same
thread stays there too, even at another alpha; and ``context={"max_run_cost": ...}`` caps what
one run may spend (here a budget too small for any model ends the run with a message instead
of a model call).

    OPENROUTER_API_KEY=sk-or-... python examples/agent_middleware.py   # live, OpenRouter
    python examples/agent_middleware.py --offline                      # local test server
"""

from __future__ import annotations

from typing import Any

from _offline import chat_model, parse_args
from langchain.agents import create_agent
from langchain.agents.middleware import ModelCallLimitMiddleware, ModelRetryMiddleware
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from langchain_avengers.agents.middleware import AvengersMiddleware


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


def show_turn(label: str, result: dict[str, Any], first_message: int) -> None:
    """Print the model calls of one turn and what the agent state says it cost."""
    print(f"{label}: {result['messages'][first_message].content}")
    for message in result["messages"][first_message:]:
        if not isinstance(message, AIMessage):
            continue
        info = message.response_metadata.get("avengers", {})
        if info.get("stopped"):
            print(f"  stopped: {message.content}")
            continue
        pinned = (info.get("pinned") or {}).get("source", "no (routed)")
        print(f"  served by {message.response_metadata['model_name']} at alpha={info['alpha']:g}")
        pick = info["candidates"][0]["model"]
        print(f"    pinned: {pinned}; router's own pick: {pick}; cost ${info['actual_cost']:.6f}")
        for broken in info.get("pin_broken", []):
            print(f"    pin broken: {broken['model']}: {broken['reason']}")
    turn = result.get("avengers_turn")
    if turn and result["messages"][-1].response_metadata.get("avengers", {}).get("model"):
        print(f"  turn spend: ${turn['cost']:.6f} over {turn['calls']} calls on {turn['model']}")
    print(f"  run spend: ${result.get('avengers_run_cost', 0.0):.6f}\n")


def main() -> None:
    args = parse_args(__doc__)
    with chat_model(args.offline, pin_conversations=True) as llm:
        agent = create_agent(
            model=llm,
            tools=[multiply],
            system_prompt="Use the multiply tool for arithmetic.",
            middleware=[
                AvengersMiddleware(llm),
                ModelRetryMiddleware(max_retries=1),
                ModelCallLimitMiddleware(run_limit=6),
            ],
            checkpointer=InMemorySaver(),
        )
        thread = {"configurable": {"thread_id": "demo-thread"}}
        first = agent.invoke(
            {"messages": [("user", "Use multiply to get 12.5 times 8.")]},
            thread,
            context={"alpha": 0.9, "max_run_cost": 0.05},
        )
        show_turn("turn 1 (alpha 0.9)", first, 0)
        second = agent.invoke(
            {"messages": [("user", "Now use multiply to get 3 times 7.")]},
            thread,
            context={"alpha": 0.1, "max_run_cost": 0.05},
        )
        show_turn("turn 2 (alpha 0.1, same thread)", second, len(first["messages"]))
        broke = agent.invoke(
            {"messages": [("user", "Use multiply to get 2 times 2.")]},
            {"configurable": {"thread_id": "tiny-budget"}},
            context={"max_run_cost": 1e-5},
        )
        show_turn("turn on a $0.00001 budget", broke, 0)


if __name__ == "__main__":
    main()
