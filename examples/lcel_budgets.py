"""One LCEL chain, two budgets: the router picks a model per question and per alpha.

``prompt | llm | StrOutputParser()`` returns a plain string, so the AIMessage (and its routing
metadata) is gone by the end of the chain. A callback handler sees it on the way: the
``avengers_route`` custom event carries the routing decision, ``on_llm_end`` the answer with
its actual cost.

    OPENROUTER_API_KEY=sk-or-... python examples/lcel_budgets.py   # live, OpenRouter
    python examples/lcel_budgets.py --offline                      # local test server
"""

from __future__ import annotations

from typing import Any

from _offline import chat_model, parse_args
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import LLMResult
from langchain_core.prompts import ChatPromptTemplate

from langchain_avengers.chat_models.base import ROUTE_EVENT

QUESTIONS = [
    "What is the capital of Australia?",
    "Prove that there are infinitely many prime numbers.",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Explain the difference between TCP and UDP.",
]
BUDGETS = {"thrifty": 0.2, "quality": 0.9}


class RouteLog(BaseCallbackHandler):
    """Remembers the latest routing decision and the cost of the latest answer."""

    def __init__(self) -> None:
        self.decision: dict[str, Any] = {}
        self.cost: float | None = None

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == ROUTE_EVENT:  # fired before the HTTP request (again on a fallback)
            self.decision = data

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        message = response.generations[0][0].message  # type: ignore[attr-defined]
        self.cost = message.response_metadata["avengers"]["actual_cost"]


def main() -> None:
    args = parse_args(__doc__)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer in at most three sentences."), ("human", "{question}")]
    )
    with chat_model(args.offline, max_tokens=200) as llm:
        log = RouteLog()
        chains = {b: prompt | llm.bind(alpha=a) | StrOutputParser() for b, a in BUDGETS.items()}
        totals = dict.fromkeys(BUDGETS, 0.0)
        for question in QUESTIONS:
            print(question)
            for budget, alpha in BUDGETS.items():
                answer = chains[budget].invoke({"question": question}, config={"callbacks": [log]})
                totals[budget] += log.cost or 0.0
                expected = log.decision["expected_cost"]
                print(
                    f"  {budget:8} alpha={alpha}: {log.decision['model']:34}"
                    f" cost ${log.cost or 0:.6f} (expected ${expected:.6f})"
                )
                print(f"    -> {answer[:90]}")
        print()
        for budget, alpha in BUDGETS.items():
            print(f"total cost, {budget} (alpha={alpha}): ${totals[budget]:.6f}")


if __name__ == "__main__":
    main()
