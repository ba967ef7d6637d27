"""AvengersDecisionModel answering LangChain's ``Choice`` questions, and in ModelRouterMiddleware.

``langchain_core.decisions`` ships with langchain-core >= 1.8 (the package's lower bound) and
``ModelRouterMiddleware`` with langchain >= 1.5 (the ``agents`` extra): these tests always run.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_avengers.testing import OfflineOpenRouter

QUERY = "Prove that there are infinitely many prime numbers."
PRO, FLASH = "google/gemini-2.5-pro", "google/gemini-2.5-flash"
LABELS = {"fast": FLASH, "strong": PRO}


def choice(criteria: dict[str, Any]) -> Any:
    from langchain_core.decisions import Choice

    return Choice(instructions="Which model should answer?", criteria=criteria)


def test_choice_is_the_routers_pick_with_softmax_probabilities(router: Any) -> None:
    from langchain_avengers.agents.decisions import AvengersDecisionModel

    model = AvengersDecisionModel(router=router, labels=LABELS, alpha=0.6, temperature=0.5)
    question = choice({"fast": "simple tasks", "strong": "hard tasks"})
    response = model.invoke({"state": HumanMessage(QUERY), "questions": {"route": question}})
    answer = response.choices["route"]
    decision = router.route(QUERY, 0.6, allowed_models=[FLASH, PRO])
    assert answer.choice == {FLASH: "fast", PRO: "strong"}[decision.model]
    scores = {c.model: c.score / 0.5 for c in decision.candidates}  # utility scoring
    norm = sum(math.exp(s) for s in scores.values())
    assert answer.probabilities == {
        "fast": pytest.approx(math.exp(scores[FLASH]) / norm),
        "strong": pytest.approx(math.exp(scores[PRO]) / norm),
    }
    assert answer.confidence == pytest.approx(answer.probabilities[answer.choice])
    assert response.model == "avengers-router"
    assert response.usage is None


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


def test_model_router_middleware_routes_an_agent_with_it(
    server: OfflineOpenRouter, router: Any
) -> None:
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


def test_a_clear_pick_gets_a_clear_probability_under_the_default_scoring() -> None:
    """The bundled router's utility scores are in expected-accuracy units: a pick that leads
    by 0.05 or more (five accuracy points net of cost) gets most of the probability, and a
    near tie is reported as one (failed before: 0.23/0.26/0.26/0.26 at alpha 0.9)."""
    from langchain_avengers import load_default_router
    from langchain_avengers.agents.decisions import AvengersDecisionModel

    bundled = load_default_router()
    model = AvengersDecisionModel(alpha=0.1)
    question = choice(dict.fromkeys(bundled.models_))
    for query in (QUERY,):
        decision = bundled.route(query, 0.1)
        best, runner_up = decision.candidates[0].score, decision.candidates[1].score
        assert best - runner_up >= 0.05  # a clear pick
        answer = model.invoke({"state": query, "questions": {"q": question}}).choices["q"]
        assert answer.choice == decision.model
        assert answer.confidence >= 0.9
        ranked = sorted(answer.probabilities, key=answer.probabilities.__getitem__, reverse=True)
        assert ranked == [c.model for c in decision.candidates]
    near_tie = AvengersDecisionModel(alpha=0.9).invoke(
        {"state": QUERY, "questions": {"q": question}}
    )
    top_two = sorted(near_tie.choices["q"].probabilities.values(), reverse=True)[:2]
    assert top_two[0] - top_two[1] < 0.05  # utilities 0.0003 apart: a coin flip, said so
