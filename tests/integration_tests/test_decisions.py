"""AvengersDecisionModel answering LangChain's ``Choice`` questions, and in ModelRouterMiddleware.

``langchain_core.decisions`` ships with langchain-core >= 1.8 and ``ModelRouterMiddleware`` with
langchain >= 1.5; where they are not installed these tests skip, and the one test that runs
checks the import error a user then gets.
"""

from __future__ import annotations

import importlib
import math
import sys
from typing import Any

import langchain_core
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from openrouter_server import TestServer

HAS_DECISIONS = importlib.util.find_spec("langchain_core.decisions") is not None
needs_core_18 = pytest.mark.skipif(
    not HAS_DECISIONS,
    reason=f"langchain_core.decisions needs langchain-core >= 1.8 "
    f"(installed: {langchain_core.__version__})",
)
QUERY = "Prove that there are infinitely many prime numbers."
PRO, FLASH = "google/gemini-2.5-pro", "google/gemini-2.5-flash"
LABELS = {"fast": FLASH, "strong": PRO}


def choice(criteria: dict[str, Any]) -> Any:
    from langchain_core.decisions import Choice

    return Choice(instructions="Which model should answer?", criteria=criteria)


@pytest.mark.skipif(HAS_DECISIONS, reason="langchain-core >= 1.8 is installed")
def test_without_langchain_core_18_the_import_error_says_what_to_install() -> None:
    sys.modules.pop("langchain_avengers.agents.decisions", None)
    with pytest.raises(
        ImportError, match=r"langchain-core >= 1\.8.*langchain-avengers\[decisions\]"
    ):
        importlib.import_module("langchain_avengers.agents.decisions")


@needs_core_18
def test_choice_is_the_routers_pick_with_softmax_probabilities(router: Any) -> None:
    from langchain_avengers.agents.decisions import AvengersDecisionModel

    model = AvengersDecisionModel(router=router, labels=LABELS, alpha=0.6, temperature=0.5)
    question = choice({"fast": "simple tasks", "strong": "hard tasks"})
    response = model.invoke({"state": HumanMessage(QUERY), "questions": {"route": question}})
    answer = response.choices["route"]
    decision = router.route(QUERY, 0.6, allowed_models=[FLASH, PRO])
    assert answer.choice == {FLASH: "fast", PRO: "strong"}[decision.model]
    scores = {c.model: c.score / decision.nearest_clusters / 0.5 for c in decision.candidates}
    norm = sum(math.exp(s) for s in scores.values())
    assert answer.probabilities == {
        "fast": pytest.approx(math.exp(scores[FLASH]) / norm),
        "strong": pytest.approx(math.exp(scores[PRO]) / norm),
    }
    assert answer.confidence == pytest.approx(answer.probabilities[answer.choice])
    assert response.model == "avengers-router"
    assert response.usage is None


@needs_core_18
async def test_labels_may_be_pool_ids_and_states_may_be_text_or_messages(router: Any) -> None:
    from langchain_avengers.agents.decisions import AvengersDecisionModel

    model = AvengersDecisionModel(router=router, alpha=1.0)
    question = choice(dict.fromkeys(router.models_))
    for state in (
        QUERY,
        [AIMessage("hi"), HumanMessage(QUERY)],
        {"messages": [HumanMessage(QUERY)]},
    ):
        answer = (await model.ainvoke({"state": state, "questions": {"q": question}})).choices["q"]
        assert answer.choice == router.route(QUERY, 1.0).model
        assert sum(answer.probabilities.values()) == pytest.approx(1.0)


@needs_core_18
def test_questions_the_router_cannot_answer_are_refused(router: Any) -> None:
    from langchain_core.decisions import Noul

    from langchain_avengers.agents.decisions import AvengersDecisionModel

    model = AvengersDecisionModel(router=router, labels=LABELS)
    with pytest.raises(ValueError, match=r"questions\['q'\]: .*not 'noul' questions"):
        model.invoke({"state": QUERY, "questions": {"q": Noul(instructions="Is it hard?")}})
    with pytest.raises(ValueError, match=r"label\(s\) \['medium'\] name no model"):
        model.invoke({"state": QUERY, "questions": {"q": choice({"fast": 1, "medium": 2})}})
    twice = AvengersDecisionModel(router=router, labels={"a": PRO, "b": PRO})
    with pytest.raises(ValueError, match=r"labels .a. and .b. both map to google/gemini-2\.5-pro"):
        twice.invoke({"state": QUERY, "questions": {"q": choice({"a": 1, "b": 2})}})
    with pytest.raises(ValueError, match=r"labels: model id\(s\) \['acme/x'\]"):
        AvengersDecisionModel(router=router, labels={"x": "acme/x"})


@needs_core_18
def test_model_router_middleware_routes_an_agent_with_it(server: TestServer, router: Any) -> None:
    pytest.importorskip(
        "langchain.agents.middleware.model_router", reason="ModelRouterMiddleware: langchain >= 1.5"
    )
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelChoice, ModelRouterMiddleware
    from langchain_openai import ChatOpenAI

    from langchain_avengers.agents.decisions import AvengersDecisionModel

    def chat(model: str) -> ChatOpenAI:
        return ChatOpenAI(model=model, base_url=server.base_url, api_key="k", max_retries=0)

    for alpha in (0.0, 1.0):
        server.reset()
        classifier = AvengersDecisionModel(router=router, labels=LABELS, alpha=alpha)
        middleware = ModelRouterMiddleware(
            choices={
                "fast": ModelChoice(model=chat(FLASH), criteria="Simple tasks."),
                "strong": ModelChoice(model=chat(PRO), criteria="Hard tasks."),
            },
            instructions="Choose the least costly model suited to the task.",
            classifier=classifier,
        )
        agent = create_agent(chat(FLASH), middleware=[middleware])
        result = agent.invoke({"messages": [HumanMessage(QUERY)]})
        picked = router.route(QUERY, alpha, allowed_models=[FLASH, PRO]).model
        assert result["model_route"].choice == {FLASH: "fast", PRO: "strong"}[picked]
        assert server.models_called() == [picked]
