"""AvengersDecisionModel: LangChain's ``Choice`` question answered by the cluster router.

LangChain's ``ModelRouterMiddleware`` asks a decision model (``langchain_core.decisions``) which
of its named model choices should serve an agent run. This one answers with the router: the
labels are pool model ids (or are mapped to them with ``labels=``), the chosen label is the
router's pick at ``alpha``, and the probabilities are a softmax of the candidates' routing
scores divided by a temperature in the score's own units::

    p(label) = softmax(score(label) / temperature)

Under the default (utility) scoring a score is expected accuracy minus the price of the
expected cost, so it is in accuracy units and the default temperature is 0.02: a candidate two
accuracy points (net of cost) behind is a factor e less likely, five points behind a factor 12.
A clear pick gets a clear probability and a near tie is shown as one. Under ``scoring="minmax"``
the score is normalised per cluster, and the default temperature is a quarter of that range.
These are routing preferences, not calibrated probabilities of a correct answer. The confidence
is the chosen label's probability. Routing reads the latest human message of the state (or the
state's text), costs no tokens and reports no usage.

``ModelRouterMiddleware`` needs the ``agents`` extra: ``pip install "langchain-avengers[agents]"``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.decisions import (
    BaseDecisionModel,
    Choice,
    ChoiceAnswer,
    ClassifierResponse,
    Question,
    State,
)
from langchain_core.messages import BaseMessage
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from langchain_avengers.chat_models.options import check_nearest_clusters
from langchain_avengers.openrouter.messages import message_text
from langchain_avengers.policies.routing_text import routing_text
from langchain_avengers.routing.router import ClusterRouter, RoutingDecision

__all__ = ["AvengersDecisionModel"]

UTILITY_TEMPERATURE = 0.02
"""Default temperature under utility scoring, in expected-accuracy units."""
MINMAX_TEMPERATURE = 0.25
"""Default temperature under min-max scoring, in units of the per-cluster score range."""


class AvengersDecisionModel(BaseDecisionModel):
    """Answers ``Choice`` questions (which model?) with the Avengers-Pro router.

    Example:
        .. code-block:: python

            from langchain.agents.middleware import ModelChoice, ModelRouterMiddleware
            from langchain_avengers.agents.decisions import AvengersDecisionModel

            router = ModelRouterMiddleware(
                choices={
                    "fast": ModelChoice(model=flash, criteria="Simple tasks."),
                    "strong": ModelChoice(model=pro, criteria="Hard tasks."),
                },
                instructions="Choose the least costly model suited to the task.",
                classifier=AvengersDecisionModel(
                    labels={"fast": "google/gemini-2.5-flash", "strong": "google/gemini-2.5-pro"},
                    alpha=0.5,
                ),
            )
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str = "avengers-router"
    """Reported as the answering model (``ls_model_name``)."""
    router: Any = Field(default=None, validate_default=True)
    """A fitted ClusterRouter or the path of a saved one; ``None``: the bundled router."""
    labels: dict[str, str] | None = None
    """Choice label -> pool model id; ``None``: the labels are pool model ids themselves."""
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    """Weight of accuracy against cost (1: the best expected answer, 0: the cheapest)."""
    nearest_clusters: int | None = None
    """Nearest clusters used; ``None``: the router's own."""
    temperature: float | None = Field(default=None, gt=0.0)
    """Softmax temperature in the units of the routing score; ``None``: 0.02 accuracy points
    under the default (utility) scoring, 0.25 of the normalised range under ``"minmax"``."""

    _fitted: ClusterRouter | None = PrivateAttr(default=None)

    @field_validator("router", mode="before")
    @classmethod
    def _load(cls, value: Any) -> ClusterRouter:
        from langchain_avengers.routing.bundled import load_router

        return load_router(value)

    def model_post_init(self, context: Any, /) -> None:
        """Check labels and ``nearest_clusters`` against the router once."""
        router: ClusterRouter = self.router
        check_nearest_clusters(self.nearest_clusters, router.n_clusters_)
        unknown = sorted(m for m in (self.labels or {}).values() if m not in router.models_)
        if unknown:
            msg = f"labels: model id(s) {unknown} are not in the router's pool {router.models_}"
            raise ValueError(msg)

    @property
    def _provider(self) -> str:
        return "avengers"

    def _classify(self, state: State, questions: dict[str, Question]) -> ClassifierResponse:
        text = state_text(state)
        answers: dict[str, Any] = {}
        for name, question in questions.items():
            models = self._models(name, question)
            decision = self.router.route(
                text,
                self.alpha,
                allowed_models=list(models),
                nearest_clusters=self.nearest_clusters,
            )
            answers[name] = self._answer(models, decision)
        return ClassifierResponse(model=self.model, answers=answers)

    async def _aclassify(self, state: State, questions: dict[str, Question]) -> ClassifierResponse:
        text = state_text(state)
        answers: dict[str, Any] = {}
        for name, question in questions.items():
            models = self._models(name, question)
            decision = await self.router.aroute(
                text,
                self.alpha,
                allowed_models=list(models),
                nearest_clusters=self.nearest_clusters,
            )
            answers[name] = self._answer(models, decision)
        return ClassifierResponse(model=self.model, answers=answers)

    def _scale(self) -> tuple[float, float]:
        """The temperature, and what a score is divided by to be per cluster."""
        if self.router.scoring == "minmax":  # summed over the nearest clusters
            nearest = self.nearest_clusters or self.router.nearest_clusters_
            return self.temperature or MINMAX_TEMPERATURE, float(nearest)
        return self.temperature or UTILITY_TEMPERATURE, 1.0

    def _models(self, name: str, question: Question) -> dict[str, str]:
        """Pool model id -> label, for one question's labels.

        Raises:
            ValueError: not a ``Choice``, a label with no pool model, two labels on one model.
        """
        where = f"questions[{name!r}]"
        if not isinstance(question, Choice):
            msg = (
                f"{where}: AvengersDecisionModel answers Choice questions (which model should "
                f"serve), not {question.type!r} questions"
            )
            raise ValueError(msg)
        pool = self.router.models_
        mapping = self.labels if self.labels is not None else {m: m for m in pool}
        missing = [label for label in question.criteria if label not in mapping]
        if missing:
            how = "add them to labels={...}" if self.labels is not None else "pass labels={...}"
            msg = (
                f"{where}: label(s) {missing} name no model of the router's pool {pool}; "
                f"{how} mapping each label to a pool model id"
            )
            raise ValueError(msg)
        models: dict[str, str] = {}
        for label in question.criteria:
            model = mapping[label]
            if model in models:
                msg = f"{where}: labels {models[model]!r} and {label!r} both map to {model}"
                raise ValueError(msg)
            models[model] = label
        return models

    def _answer(self, models: Mapping[str, str], decision: RoutingDecision) -> ChoiceAnswer:
        """The router's pick as a label, with softmax probabilities of the scores."""
        temperature, per_cluster = self._scale()
        logits = {models[c.model]: c.score / per_cluster / temperature for c in decision.candidates}
        top = max(logits.values())
        weights = {label: math.exp(value - top) for label, value in logits.items()}
        total = sum(weights.values())
        probabilities = {label: weights[label] / total for label in models.values()}
        choice = models[decision.model]
        return ChoiceAnswer(
            type="choice",
            choice=choice,
            probabilities=probabilities,
            confidence=min(max(probabilities[choice], 0.0), 1.0),
        )


def state_text(state: object) -> str:
    """The text routing reads from a decision state.

    A string is read as it is; a message, a list of messages or a mapping with
    ``"messages"`` gives its latest human message; any other JSON value its JSON text.
    """
    if isinstance(state, str):
        return state
    if isinstance(state, BaseMessage):
        return message_text(state)
    messages = state.get("messages") if isinstance(state, Mapping) else state
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        found = [m for m in messages if isinstance(m, BaseMessage)]
        if found:
            return routing_text(found)
    return json.dumps(state, sort_keys=True, ensure_ascii=False, default=str)
