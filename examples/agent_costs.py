"""What a whole agent spent, in tokens and dollars, per model and in total.

Every answer of ``AvengersChatModel`` carries its cost in ``usage_metadata`` (``input_cost``,
``output_cost``, ``total_cost``, USD). ``langchain_avengers.callbacks.get_usage_metadata_callback``
adds them up over every model call made inside its ``with`` block, the agent's included. It
is a drop-in for ``langchain_core.callbacks.get_usage_metadata_callback``, whose handler
cannot add float costs (langchain-ai/langchain#36015) and stops counting at the second
answer of a model.

    OPENROUTER_API_KEY=sk-or-... python examples/agent_costs.py   # live, OpenRouter
    python examples/agent_costs.py --offline                      # local test server
"""

from __future__ import annotations

from _offline import chat_model, parse_args
from langchain.agents import create_agent
from langchain_core.tools import tool

from langchain_avengers.callbacks import get_usage_metadata_callback

QUESTIONS = {
    "What is 12.5 times 4? Use the multiply tool.": 0.2,
    "Use the multiply tool to compute 3 times 7, then explain the result in one sentence.": 0.9,
}
"""Each question with the budget (alpha) its agent runs at."""


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


def main() -> None:
    args = parse_args(__doc__)
    with chat_model(args.offline) as llm, get_usage_metadata_callback() as usage:
        for question, alpha in QUESTIONS.items():
            agent = create_agent(model=llm.bind(alpha=alpha), tools=[multiply])
            result = agent.invoke({"messages": [("user", question)]})
            print(f"Q (alpha={alpha}): {question}\nA: {result['messages'][-1].content}\n")

    for model, summed in usage.usage_metadata.items():
        print(
            f"{model}: {summed['input_tokens']} tokens in, {summed['output_tokens']} out, "
            f"${summed.get('total_cost', 0.0):.6f}"
        )
    print(f"agent total: {usage.total_tokens} tokens, ${usage.total_cost:.6f}")


if __name__ == "__main__":
    main()
