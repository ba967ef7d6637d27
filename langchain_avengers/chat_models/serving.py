"""Serving a routed call: try the plan's models in turn, in LangChain's four call hooks.

The chat model routes each call (:mod:`.runs`); :class:`PlanServing` answers it with the
plan's first model, retrying and falling back as the plan says, reports the route event on
the call's run, and names the routed model, its cost and the decision on the answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from langchain_avengers._compat import agenerate_with, astream_with, generate_with, stream_with
from langchain_avengers.catalog.profiles import OpenRouterProfile
from langchain_avengers.chat_models.attempts import Plan, afirst_answer, first_answer
from langchain_avengers.chat_models.costs import AnswerCost, annotate_answer, answer_cost
from langchain_avengers.chat_models.runs import RoutedChatModel, aemit, emit
from langchain_avengers.chat_models.streaming import (
    StreamTally,
    aannotated,
    ahead_of,
    annotated,
    head_of,
)
from langchain_avengers.openrouter.chat import OpenRouterChatOpenAI

__all__ = ["DEFAULT_TIMEOUT_S", "PlanServing"]

DEFAULT_TIMEOUT_S = 120.0
"""Seconds without an answer before a request gives up and the next model is tried: longer
than a long non-streamed answer usually takes, short enough that a hung provider costs two
minutes rather than forever."""


class PlanServing(RoutedChatModel):
    """A routed chat model that serves each call's plan with one client per pool model.

    Its fields are the settings every model's client gets (sampling, limits, retries), under
    ChatOpenAI's names and meanings.
    """

    _clients: dict[str, OpenRouterChatOpenAI] = PrivateAttr(default_factory=dict)
    _profiles: dict[str, OpenRouterProfile] = PrivateAttr(default_factory=dict)
    """Resolved profile of every pool model found in ``profiles`` or a catalog."""

    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Default stop sequences, for calls that give none."""
    temperature: float | None = None
    """Sampling temperature passed to the chosen model."""
    top_p: float | None = None
    """Nucleus sampling (total probability mass of the tokens considered), in [0, 1], passed
    to the chosen model. The number of nearest clusters routing reads is
    ``nearest_clusters``."""
    seed: int | None = None
    """Seed for sampling, passed to the chosen model (where its provider supports it)."""
    frequency_penalty: float | None = None
    """Penalises tokens by how often they have appeared; passed to the chosen model."""
    presence_penalty: float | None = None
    """Penalises tokens that have appeared at all; passed to the chosen model."""
    reasoning_effort: str | None = None
    """Reasoning effort (``"low"``, ``"medium"``, ``"high"``...) for models that reason."""
    max_tokens: int | None = Field(default=None, alias="max_completion_tokens")
    """Most tokens to generate."""
    timeout: float | None = Field(
        default=DEFAULT_TIMEOUT_S, alias="request_timeout", gt=0, allow_inf_nan=False
    )
    """Seconds a request may wait for the provider before it fails and the next model is
    tried (default 120; ``None`` waits forever)."""
    max_retries: int = Field(default=1, ge=0)
    """Retries of the same model after a transient failure (5xx, 408, 429 with a short
    ``Retry-After``, a dropped connection) before the next model is tried. Timeouts and a
    ``Retry-After`` over 5 s go to the next model at once."""
    streaming: bool = False
    """Stream internally even for ``invoke`` (callbacks then see tokens)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra request parameters for every model's API call that have no field here, as in
    ChatOpenAI (e.g. ``{"logit_bias": {...}}``)."""
    model_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-model ChatOpenAI settings that override the shared ones for that model, e.g.
    ``{"google/gemini-2.5-pro": {"temperature": 0, "reasoning_effort": "low"}}``. Identity,
    connection and retry settings (``model``, ``base_url``, ``api_key``, ``max_retries``,
    ``stream_usage``...) are refused, as are names ChatOpenAI does not know."""

    def _stop(self, stop: list[str] | None) -> list[str] | None:
        return stop or self.stop

    def _record(self, cost: AnswerCost) -> None:
        """Hear what an answered call cost (the chat model tells its pacer)."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan, target = self._take_call(messages, kwargs)
        model, result = first_answer(
            plan,
            lambda model: generate_with(
                self._clients[model], messages, self._stop(stop), run_manager, **kwargs
            ),
            lambda model: emit(self, plan.report(model), run_manager, target),
        )
        return self._finish(result, plan, model)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan, target = await self._atake_call(messages, kwargs)
        model, result = await afirst_answer(
            plan,
            lambda model: agenerate_with(
                self._clients[model], messages, self._stop(stop), run_manager, **kwargs
            ),
            lambda model: aemit(self, plan.report(model), run_manager, target),
        )
        return self._finish(result, plan, model)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        plan, target = self._take_call(messages, kwargs)

        def opened(model: str) -> tuple[list[ChatGenerationChunk], Iterator[ChatGenerationChunk]]:
            chunks = stream_with(self._clients[model], messages, self._stop(stop), **kwargs)
            return head_of(chunks), chunks  # a failure before the first chunk falls back

        model, (head, chunks) = first_answer(
            plan, opened, lambda model: emit(self, plan.report(model), run_manager, target)
        )
        for chunk in annotated(self._tally(plan, model), head, chunks):
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        plan, target = await self._atake_call(messages, kwargs)

        async def opened(
            model: str,
        ) -> tuple[list[ChatGenerationChunk], AsyncIterator[ChatGenerationChunk]]:
            chunks = astream_with(self._clients[model], messages, self._stop(stop), **kwargs)
            return await ahead_of(chunks), chunks

        model, (head, chunks) = await afirst_answer(
            plan, opened, lambda model: aemit(self, plan.report(model), run_manager, target)
        )
        async for chunk in aannotated(self._tally(plan, model), head, chunks):
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _tally(self, plan: Plan, model: str) -> StreamTally:
        profile = self._profiles.get(model)
        return StreamTally(plan.report(model), model, profile, on_cost=self._record)

    def _finish(self, result: ChatResult, plan: Plan, model: str) -> ChatResult:
        """Name the routed model, and add the decision, usage costs and cost to the answer."""
        message = result.generations[0].message
        assert isinstance(message, AIMessage)
        token_usage = (result.llm_output or {}).get("token_usage") or {}
        cost = answer_cost(
            message.usage_metadata, token_usage.get("cost"), self._profiles.get(model)
        )
        self._record(cost)
        provider_model = (result.llm_output or {}).get("model_name")
        avengers = annotate_answer(message, model, plan.report(model), cost, provider_model)
        llm_output = {**(result.llm_output or {}), "model_name": model, "avengers": avengers}
        return ChatResult(generations=result.generations, llm_output=llm_output)
