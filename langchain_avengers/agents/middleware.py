"""AvengersMiddleware: route every model call of a ``create_agent`` agent.

The middleware routes each model call (its messages, tools and response format) through the
same routing path as :class:`~langchain_avengers.AvengersChatModel`, then answers with
``handler(request.override(model=<the chosen model>))``. On top of the chat model it keeps:

* **one model per agent turn**: the tool loop of one human message stays on the model chosen
  for its first call while that model can serve (a capability, the context length or the run
  budget can force a change); the model and the turn's spend live in the agent state
  (``avengers_turn``);
* **a budget per run** from ``runtime.context``: ``alpha``, ``max_cost_per_call`` and
  ``max_run_cost`` (USD for one ``invoke``): models expected to cost more than what is left
  are passed over, so the run moves to cheaper models as it nears the cap, and when nothing
  fits it stops cleanly (an ``AIMessage`` saying so, or :class:`RunBudgetExceededError`).

Put it first in ``middleware=[...]`` (outermost), so retry and fallback middleware act on the
routed model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_avengers._utils.extras import MissingExtraError, install_line

try:
    from langchain.agents.middleware.types import (
        AgentMiddleware,
        ExtendedModelResponse,
        ModelRequest,
        ModelResponse,
    )
    from langchain.agents.structured_output import ProviderStrategy, ToolStrategy
except ImportError as error:  # pragma: no cover - exercised without langchain installed
    msg = f"AvengersMiddleware needs langchain (create_agent middleware): {install_line('agents')}"
    raise MissingExtraError(msg) from error

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager, Callbacks
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.types import Command

from langchain_avengers.agents.context import (
    _context_options,
    _thread_id,
)
from langchain_avengers.agents.pool import (
    path_options,
    pinning_for,
    refuse_chat_model_options,
    resolve_pool,
)
from langchain_avengers.agents.state import (
    AvengersAgentState,
    AvengersTurn,
    RunBudgetExceededError,
)
from langchain_avengers.chat_models.attempts import Plan, afirst_answer, first_answer
from langchain_avengers.chat_models.base import AvengersChatModel
from langchain_avengers.chat_models.costs import (
    AnswerCost,
    annotate_answer,
    answer_cost,
    format_usd,
)
from langchain_avengers.chat_models.options import (
    check_max_cost,
)
from langchain_avengers.chat_models.routing import (
    AUTO_STRUCTURED,
    Call,
    OverRunBudgetError,
    Sticky,
)
from langchain_avengers.policies.pacing import AlphaSource
from langchain_avengers.policies.routing_text import is_human_turn
from langchain_avengers.routing.router import ClusterRouter

__all__ = [
    "AvengersAgentState",
    "AvengersMiddleware",
    "AvengersTurn",
    "RunBudgetExceededError",
]


@dataclass(frozen=True)
class _Step:
    """What one model call of the agent starts from."""

    turn: AvengersTurn | None
    """The turn this call continues (``None``: the call starts a turn)."""
    run_cost: float
    max_run_cost: float | None
    options: dict[str, Any]


class _AnswerMarker(BaseCallbackHandler):
    """Sees the answer of the model run it is attached to (to tell it from a substitute's)."""

    run_inline = True

    def __init__(self) -> None:
        self.message: BaseMessage | None = None

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Keep the answer's message."""
        generation = response.generations[0][0] if response.generations else None
        if isinstance(generation, ChatGeneration):
            self.message = generation.message

    def answer_in(self, response: ModelResponse) -> AIMessage | None:
        """The marked model's answer if it is the response's (identity, not equality)."""
        for message in response.result:
            if message is self.message and isinstance(message, AIMessage):
                return message
        return None


class AvengersMiddleware(AgentMiddleware[AvengersAgentState, Any, Any]):
    """Routes each model call of a ``create_agent`` agent to one model of a pool.

    Example:
        .. code-block:: python

            from langchain.agents import create_agent
            from langchain_avengers import AvengersChatModel
            from langchain_avengers.agents.middleware import AvengersMiddleware

            llm = AvengersChatModel()
            agent = create_agent(llm, tools=[search], middleware=[AvengersMiddleware(llm)])
            agent.invoke({"messages": [("user", "...")]}, context={"max_run_cost": 0.05})

    With an :class:`AvengersChatModel` the middleware takes everything from it (router,
    profiles, routing options, pacer, pins, retries): set them there (or with
    ``llm.with_routing(...)``) and give the middleware only what is its own, ``max_run_cost``
    and ``budget_exit_behavior``. The other arguments configure a mapping pool of arbitrary
    LangChain chat models, which has no chat model to take them from.

    Args:
        pool: An :class:`AvengersChatModel`, or a mapping of model id to any LangChain chat
            model (then ``router`` is required and must know every id).
        router: A fitted router or the path of a saved one (mapping pools only).
        profiles: Per-model profiles for a mapping pool (capabilities, ``max_input_tokens``,
            ``input_usd_per_mtok``/``output_usd_per_mtok``), merged key by key over the
            model's own ``.profile`` and over the OpenRouter catalog's entry for its id.
        alpha: Default alpha (else the pacer's, or 0.5). This and the arguments down to
            ``max_retries`` are for mapping pools only.
        nearest_clusters: Nearest clusters used for routing.
        models: Restrict routing to these pool ids.
        max_cost_per_call: USD cap on every call's expected cost.
        pacer: A spend pacer giving the alpha of calls that give none; told every answer's cost.
        pin_conversations: Keep a conversation (``context["session_id"]`` or the thread id)
            on one model across runs.
        pin_ttl: Seconds an idle conversation stays pinned.
        pin_store: A ``PinStore`` or a LangGraph ``BaseStore`` shared by workers.
        routing_text: ``"latest_human"`` or ``"conversation"``.
        routing_text_chars: Character budget of ``routing_text="conversation"``.
        max_fallbacks: Next-best pool models tried after a retryable failure.
        max_retries: Retries of the same model after a transient failure (mapping pools;
            default 0, since LangChain's own clients retry).
        max_run_cost: Default USD budget of one run (``runtime.context`` can set its own).
            **The bound:** a call is made only on a model whose expected cost
            (:func:`~langchain_avengers.policies.pacing.expected_call_cost`) is at most what
            the run has left, and a run's calls are made one after another, so a run spends
            at most ``max_run_cost`` plus its last call's overshoot (that call's bill minus
            its expected cost; zero when the provider bills at or below the estimate). A
            provider billing 2% above the estimate can thus end a run about 2% of one call
            above the cap (``docs/guides/shared-state.md``).
        budget_exit_behavior: ``"end"``: a run whose budget is spent ends with an
            ``AIMessage`` saying so (like ``ModelCallLimitMiddleware``); ``"error"``: raise
            :class:`RunBudgetExceededError`.

    Raises:
        ValueError: A bad option (named), a pool id the router does not know.
        TypeError: A pool that is neither, a router argument with an ``AvengersChatModel``.
    """

    state_schema = AvengersAgentState

    def __init__(
        self,
        pool: AvengersChatModel | Mapping[str, BaseChatModel],
        *,
        router: ClusterRouter | str | Path | None = None,
        profiles: Mapping[str, Mapping[str, Any]] | None = None,
        alpha: float | None = None,
        nearest_clusters: int | None = None,
        models: list[str] | None = None,
        max_cost_per_call: float | None = None,
        max_run_cost: float | None = None,
        pacer: AlphaSource | None = None,
        pin_conversations: bool | None = None,
        pin_ttl: float | None = None,
        pin_store: Any = None,
        routing_text: str | None = None,
        routing_text_chars: int | None = None,
        max_fallbacks: int | None = None,
        max_retries: int | None = None,
        budget_exit_behavior: Literal["end", "error"] = "end",
    ) -> None:
        super().__init__()
        self.tools = []
        given = {
            "alpha": alpha,
            "nearest_clusters": nearest_clusters,
            "models": models,
            "max_cost_per_call": max_cost_per_call,
            "pacer": pacer,
            "pin_conversations": pin_conversations,
            "pin_ttl": pin_ttl,
            "pin_store": pin_store,
            "routing_text": routing_text,
            "routing_text_chars": routing_text_chars,
            "max_fallbacks": max_fallbacks,
            "max_retries": max_retries,
        }
        refuse_chat_model_options(pool, {k: v for k, v in given.items() if v is not None})
        if alpha is not None and pacer is not None:
            msg = "AvengersMiddleware: give alpha= or pacer=, not both"
            raise ValueError(msg)
        if budget_exit_behavior not in ("end", "error"):
            msg = f"budget_exit_behavior: expected 'end' or 'error', got {budget_exit_behavior!r}"
            raise ValueError(msg)
        self.budget_exit_behavior = budget_exit_behavior
        self.max_run_cost = check_max_cost(max_run_cost, "max_run_cost")
        self.llm, self.models, base = resolve_pool(pool, router, profiles)
        overrides = path_options(
            base,
            alpha=alpha,
            nearest_clusters=nearest_clusters,
            models=models,
            max_cost_per_call=max_cost_per_call,
            pacer=pacer,
            routing_text=routing_text,
            routing_text_chars=routing_text_chars,
            max_fallbacks=max_fallbacks,
            max_retries=max_retries,
        )
        pinning = pinning_for(self.llm, pin_conversations, pin_ttl, pin_store)
        self.path = dataclasses.replace(base, pinning=pinning, **overrides)

    # ------------------------------------------------------------------ agent hooks

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | ExtendedModelResponse[Any]:
        """Route the call, answer with the chosen model, and note the turn's model and spend."""
        step = self._step(request)
        if self._spent(step):
            return self._stopped(step, {})
        try:
            plan = self.path.route(self._call(request, step))
        except OverRunBudgetError as error:
            return self._stopped(step, error.expected_costs)
        if self.llm is not None:
            marker = _AnswerMarker()
            response = handler(request.override(model=self._following(plan, marker)))
            return self._finished(response, marker, step, plan)
        response, marker, model = self._serve(request, handler, plan)
        return self._finished(response, marker, step, plan, model)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | ExtendedModelResponse[Any]:
        """Async :meth:`wrap_model_call`."""
        step = self._step(request)
        if self._spent(step):
            return self._stopped(step, {})
        try:
            plan = await self.path.aroute(self._call(request, step))
        except OverRunBudgetError as error:
            return self._stopped(step, error.expected_costs)
        if self.llm is not None:
            marker = _AnswerMarker()
            response = await handler(request.override(model=self._following(plan, marker)))
            return self._finished(response, marker, step, plan)
        response, marker, model = await self._aserve(request, handler, plan)
        return self._finished(response, marker, step, plan, model)

    # ------------------------------------------------------------------ one call

    def _step(self, request: ModelRequest[Any]) -> _Step:
        """The turn this call belongs to, the run's spend so far and the run's options."""
        state: Mapping[str, Any] = request.state
        messages = request.messages
        starts_turn = not messages or is_human_turn(messages[-1])
        turn = None if starts_turn else state.get("avengers_turn")
        options = _context_options(request.runtime.context if request.runtime else None)
        max_run_cost = options.pop("max_run_cost", self.max_run_cost)
        session = options.pop("session_id", None)
        if self.path.pinning is not None:
            session = session or _thread_id(request)
            if session is not None:
                options["session_id"] = session
        run_cost = float(state.get("avengers_run_cost") or 0.0)
        return _Step(turn, run_cost, max_run_cost, options)

    @staticmethod
    def _spent(step: _Step) -> bool:
        return step.max_run_cost is not None and step.run_cost >= step.max_run_cost

    def _call(self, request: ModelRequest[Any], step: _Step) -> Call:
        messages: list[BaseMessage] = list(request.messages)
        if request.system_message is not None:
            messages.insert(0, request.system_message)
        sticky = [Sticky("turn", step.turn["model"])] if step.turn else []
        run_left = None
        if step.max_run_cost is not None:
            run_left = (step.max_run_cost - step.run_cost, step.max_run_cost)
        return self.path.call(
            messages,
            options=step.options,
            needs=self._needs(request),
            tools=_tool_schemas(request.tools),
            sticky=sticky,
            run_left=run_left,
        )

    def _needs(self, request: ModelRequest[Any]) -> set[str]:
        """Profile flags the request needs, as ``create_agent`` will bind it."""
        needs = set()
        if request.tools:
            needs.add("tool_calling")
            if request.tool_choice not in (None, "auto", "none"):
                needs.add("tool_choice")
        schema = request.response_format
        if isinstance(schema, ToolStrategy):
            needs |= {"tool_calling", "tool_choice"}
        elif isinstance(schema, ProviderStrategy):
            needs.add("structured_output")
        elif schema is not None:
            # a bare schema: create_agent uses the provider's structured output when the
            # model's profile says so, else a forced tool call; AvengersChatModel has no
            # LangChain profile, so a chat-model pool always gets the forced tool call
            needs |= {"tool_calling", "tool_choice"} if self.llm is not None else {AUTO_STRUCTURED}
        return needs

    def _following(self, plan: Plan, marker: _AnswerMarker) -> AvengersChatModel:
        assert self.llm is not None
        callbacks = _with_handler(self.llm.callbacks, marker)
        return self.llm._following(plan, callbacks=callbacks)

    def _prepared(self, model: str, plan: Plan, marker: _AnswerMarker) -> BaseChatModel:
        """The pool's model for one attempt, its run tagged with the decision (LangSmith)."""
        base = self.models[model]
        metadata = {**(base.metadata or {}), **plan.run_metadata()}
        callbacks = _with_handler(base.callbacks, marker)
        return base.model_copy(update={"metadata": metadata, "callbacks": callbacks})

    def _serve(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
        plan: Plan,
    ) -> tuple[ModelResponse[Any], _AnswerMarker, str]:
        """Try the plan's models in order (mapping pools; a chat-model pool does it itself)."""

        def attempt(model: str) -> tuple[ModelResponse[Any], _AnswerMarker]:
            marker = _AnswerMarker()
            return handler(request.override(model=self._prepared(model, plan, marker))), marker

        model, (response, marker) = first_answer(plan, attempt)
        return response, marker, model

    async def _aserve(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
        plan: Plan,
    ) -> tuple[ModelResponse[Any], _AnswerMarker, str]:
        """Async :meth:`_serve`."""

        async def attempt(model: str) -> tuple[ModelResponse[Any], _AnswerMarker]:
            marker = _AnswerMarker()
            prepared = request.override(model=self._prepared(model, plan, marker))
            return await handler(prepared), marker

        model, (response, marker) = await afirst_answer(plan, attempt)
        return response, marker, model

    def _finished(
        self,
        response: ModelResponse[Any],
        marker: _AnswerMarker,
        step: _Step,
        plan: Plan,
        served_by: str | None = None,
    ) -> ExtendedModelResponse[Any]:
        """The response, with the turn's model and spend and the run's spend updated.

        An answer the routed model did not give (an inner middleware substituted another
        model) is left as it is and counted as unpriced.
        """
        answer = marker.answer_in(response)
        model, cost = (None, None)
        if answer is not None:
            model, cost = self._answered(answer, plan, served_by)
        if cost is not None and self.path.pacer is not None:
            self.path.pacer.record(cost)
        previous = step.turn or AvengersTurn(
            model=plan.first_model, calls=0, cost=0.0, unpriced_calls=0
        )
        turn = AvengersTurn(
            model=model or plan.first_model,
            calls=previous["calls"] + 1,
            cost=previous["cost"] + (cost or 0.0),
            unpriced_calls=previous["unpriced_calls"] + (cost is None),
        )
        update = {"avengers_turn": turn, "avengers_run_cost": step.run_cost + (cost or 0.0)}
        return ExtendedModelResponse(model_response=response, command=Command(update=update))

    def _answered(
        self, answer: AIMessage, plan: Plan, served_by: str | None
    ) -> tuple[str, float | None]:
        """The pool model that answered and the answer's USD cost (annotating a pool answer)."""
        meta = answer.response_metadata
        if served_by is None:  # the chat model annotated its own answer
            return str(meta.get("model_name")), AnswerCost.from_metadata(meta["avengers"]).total
        model = served_by
        billed = (meta.get("token_usage") or {}).get("cost", meta.get("openrouter_cost"))
        cost = answer_cost(answer.usage_metadata, billed, self.path.profiles.get(model))
        annotate_answer(answer, model, plan.report(model), cost)
        return model, cost.total

    def _stopped(self, step: _Step, expected: Mapping[str, float | None]) -> ModelResponse[Any]:
        """End the run cleanly (or raise) once its budget cannot pay for another call.

        Args:
            step: The call that was not made.
            expected: Each capable model's expected USD for it (empty when nothing is left).
        """
        spent, cap = step.run_cost, step.max_run_cost
        assert cap is not None
        text = (
            f"Run budget reached: this run has spent {format_usd(spent)} of its max_run_cost "
            f"{format_usd(cap)}"
        )
        priced = {m: c for m, c in expected.items() if c is not None}
        if priced:
            cheapest = min(priced, key=lambda m: priced[m])
            text += (
                ", and the next model call would cost about "
                f"{format_usd(priced[cheapest])} even on the cheapest capable model ({cheapest})"
            )
        text += ", so no further model call was made."
        if self.budget_exit_behavior == "error":
            raise RunBudgetExceededError(text, spent=spent, max_run_cost=cap)
        avengers = {
            "stopped": "max_run_cost",
            "run_cost": spent,
            "max_run_cost": cap,
            "expected_call_costs": dict(expected),
        }
        return ModelResponse(
            result=[AIMessage(content=text, response_metadata={"avengers": avengers})]
        )


# ---------------------------------------------------------------------- helpers


def _tool_schemas(tools: list[Any]) -> list[dict[str, Any]] | None:
    """OpenAI schemas of the request's tools, for the prompt-token estimate."""
    schemas = []
    for tool in tools:
        try:
            schemas.append(convert_to_openai_tool(tool))
        except (ValueError, TypeError, NotImplementedError):
            schemas.append(tool if isinstance(tool, dict) else {"name": str(tool)})
    return schemas or None


def _with_handler(callbacks: Callbacks, handler: BaseCallbackHandler) -> Callbacks:
    """A model's own callbacks plus ``handler``, the model's callbacks left as they were."""
    if callbacks is None:
        return [handler]
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=False)
        return manager
    return [*callbacks, handler]
