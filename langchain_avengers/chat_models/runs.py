"""Route before LangChain opens the model's run, and fire route events on that run.

:class:`RoutedChatModel` routes in ``generate``/``agenerate``/``stream``/``astream``, before
``BaseChatModel`` starts the run, so the run is opened with the routed model as
``ls_model_name`` and the decision in its metadata. The decision travels to ``_generate``/
``_stream`` as a private keyword argument (:data:`CALL_KEY`), which is dropped from the
invocation params LangChain traces; nothing is kept in context variables, so interleaved
streams cannot see each other's decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
    Callbacks,
)
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config

from langchain_avengers._compat import HiddenCallKeys, input_messages
from langchain_avengers.chat_models.attempts import Plan

__all__ = [
    "CALL_KEY",
    "DEFAULT_LS_MODEL",
    "ROUTER_KWARGS",
    "ROUTE_EVENT",
    "THREAD_KEY",
    "EventTarget",
    "RoutedCall",
    "RoutedChatModel",
]

ROUTE_EVENT = "avengers_route"
"""Name of the custom callback event carrying each routing decision."""
CALL_KEY = "_avengers_call"
"""Private keyword argument carrying a :class:`RoutedCall` from ``generate`` to ``_generate``."""
DEFAULT_LS_MODEL = "avengers-router"
"""``ls_model_name`` when no routing decision is known (e.g. ``_get_ls_params()`` alone)."""
THREAD_KEY = "_avengers_thread"
"""Private keyword argument carrying the call's LangGraph ``configurable.thread_id``."""
ROUTER_KWARGS = (
    "alpha",
    "models",
    "nearest_clusters",
    "model",
    "avengers_capabilities",
    "max_cost_per_call",
    "session_id",
    THREAD_KEY,
)
"""Call arguments for the router, never sent to a provider."""


@dataclass(frozen=True)
class EventTarget:
    """The run a call's route events belong to, for when LangChain passes no run manager.

    ``BaseChatModel.stream()`` calls ``_stream`` without one, and so does ``invoke`` with
    ``streaming=True``; the run id is fixed before the run starts so events reach that run.
    """

    run_id: uuid.UUID
    callbacks: Callbacks
    tags: list[str] | None
    metadata: dict[str, Any] | None


@dataclass(frozen=True)
class RoutedCall:
    """A routing decision made before the run started, or the error routing raised.

    The error is raised inside the run (``_generate``/``_stream``), so tracers record it.
    """

    plan: Plan | None
    error: Exception | None
    target: EventTarget | None

    def run_metadata(self) -> dict[str, Any]:
        """The decision's flat metadata keys, or none when routing failed."""
        return self.plan.run_metadata() if self.plan is not None else {}


class RoutedChatModel(HiddenCallKeys):
    """A chat model that routes each call before LangChain opens the call's run.

    Subclasses route in :meth:`_route`/:meth:`_aroute` and serve the call in ``_generate``/
    ``_stream`` (and async twins) with the plan :meth:`_take_call` hands them. The decision
    (and the conversation's thread id) stay out of traced invocation params and cache keys:
    the decision is in the run's metadata, and a cache must not key answers by conversation.
    """

    hidden_call_keys: ClassVar[tuple[str, ...]] = (CALL_KEY, THREAD_KEY)

    def _route(
        self, messages: list[BaseMessage], kwargs: Mapping[str, Any], target: EventTarget | None
    ) -> RoutedCall:
        raise NotImplementedError

    async def _aroute(
        self, messages: list[BaseMessage], kwargs: Mapping[str, Any], target: EventTarget | None
    ) -> RoutedCall:
        raise NotImplementedError

    @property
    def _keeps_conversations(self) -> bool:
        """Whether calls need their conversation's ``thread_id`` (passed as :data:`THREAD_KEY`)."""
        return False

    def _add_thread(self, kwargs: dict[str, Any], config: RunnableConfig) -> None:
        """Pass the config's ``configurable.thread_id`` on to routing, when it is wanted."""
        thread = (config.get("configurable") or {}).get("thread_id")
        if self._keeps_conversations and thread is not None and THREAD_KEY not in kwargs:
            kwargs[THREAD_KEY] = str(thread)

    def _take_call(
        self, messages: list[BaseMessage], kwargs: dict[str, Any]
    ) -> tuple[Plan, EventTarget | None]:
        """The plan routed before the run (routing now if nobody did), router kwargs removed."""
        return _unpack(kwargs.pop(CALL_KEY, None) or self._route(messages, kwargs, None), kwargs)

    async def _atake_call(
        self, messages: list[BaseMessage], kwargs: dict[str, Any]
    ) -> tuple[Plan, EventTarget | None]:
        """Async :meth:`_take_call`."""
        call = kwargs.pop(CALL_KEY, None) or await self._aroute(messages, kwargs, None)
        return _unpack(call, kwargs)

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """``BaseChatModel.invoke``, with the config's ``thread_id`` passed on to routing."""
        config = ensure_config(config)
        self._add_thread(kwargs, config)
        return super().invoke(input, config, stop=stop, **kwargs)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Async :meth:`invoke`."""
        config = ensure_config(config)
        self._add_thread(kwargs, config)
        return await super().ainvoke(input, config, stop=stop, **kwargs)

    def generate(
        self,
        messages: list[list[BaseMessage]],
        stop: list[str] | None = None,
        callbacks: Callbacks = None,
        *,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Route, then run: the run starts with the routed model and the decision.

        Several message lists are routed and run one by one, each in its own run.
        """
        options: dict[str, Any] = {"stop": stop, "callbacks": callbacks, "tags": tags}
        options["run_name"] = run_name
        if len(messages) != 1:
            return _joined(
                [
                    self.generate(
                        [one], metadata=metadata, run_id=None if i else run_id, **options, **kwargs
                    )
                    for i, one in enumerate(messages)
                ]
            )
        if CALL_KEY not in kwargs:  # not already routed by stream() falling back to invoke
            run_id = run_id or uuid.uuid4()
            target = EventTarget(run_id, callbacks, tags, metadata)
            kwargs[CALL_KEY] = self._route(messages[0], kwargs, target)
        metadata = {**(metadata or {}), **kwargs[CALL_KEY].run_metadata()}
        return super().generate(messages, metadata=metadata, run_id=run_id, **options, **kwargs)

    async def agenerate(
        self,
        messages: list[list[BaseMessage]],
        stop: list[str] | None = None,
        callbacks: Callbacks = None,
        *,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Async :meth:`generate`; several message lists run concurrently."""
        options: dict[str, Any] = {"stop": stop, "callbacks": callbacks, "tags": tags}
        options["run_name"] = run_name
        if len(messages) != 1:
            results = await asyncio.gather(
                *(
                    self.agenerate(
                        [one], metadata=metadata, run_id=None if i else run_id, **options, **kwargs
                    )
                    for i, one in enumerate(messages)
                )
            )
            return _joined(list(results))
        if CALL_KEY not in kwargs:
            run_id = run_id or uuid.uuid4()
            target = EventTarget(run_id, callbacks, tags, metadata)
            kwargs[CALL_KEY] = await self._aroute(messages[0], kwargs, target)
        metadata = {**(metadata or {}), **kwargs[CALL_KEY].run_metadata()}
        return await super().agenerate(
            messages, metadata=metadata, run_id=run_id, **options, **kwargs
        )

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Route, then stream the chosen model's answer in a run that says so."""
        config, target = _fixed_run(config)
        self._add_thread(kwargs, config)
        call = self._route(input_messages(self, input), kwargs, target)
        config = _with_metadata(config, call)
        yield from super().stream(input, config, stop=stop, **kwargs, **{CALL_KEY: call})

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async :meth:`stream`."""
        config, target = _fixed_run(config)
        self._add_thread(kwargs, config)
        call = await self._aroute(input_messages(self, input), kwargs, target)
        config = _with_metadata(config, call)
        async for chunk in super().astream(input, config, stop=stop, **kwargs, **{CALL_KEY: call}):
            yield chunk


def _unpack(call: RoutedCall, kwargs: dict[str, Any]) -> tuple[Plan, EventTarget | None]:
    """The call's plan (raising routing's error inside the run); router kwargs removed."""
    for key in ROUTER_KWARGS:
        kwargs.pop(key, None)
    if call.error is not None:
        raise call.error
    assert call.plan is not None
    return call.plan, call.target


def _fixed_run(config: RunnableConfig | None) -> tuple[RunnableConfig, EventTarget]:
    """Fix a stream's run id now, so route events fired inside ``_stream`` reach that run."""
    config = ensure_config(config)
    run_id = config.get("run_id") or uuid.uuid4()
    target = EventTarget(
        run_id, config.get("callbacks"), config.get("tags"), config.get("metadata")
    )
    return {**config, "run_id": run_id}, target


def _with_metadata(config: RunnableConfig, call: RoutedCall) -> RunnableConfig:
    return {**config, "metadata": {**(config.get("metadata") or {}), **call.run_metadata()}}


def _joined(results: list[LLMResult]) -> LLMResult:
    """One result of several single-list ``generate`` calls, in order."""
    runs = [info for result in results for info in result.run or []]
    return LLMResult(
        generations=[g for result in results for g in result.generations],
        llm_output={},
        run=runs or None,
    )


def emit(
    chat: BaseChatModel,
    data: dict[str, Any],
    run_manager: CallbackManagerForLLMRun | None,
    target: EventTarget | None,
) -> None:
    """Fire the route event on the chat model's own run."""
    if run_manager is not None:
        _run_manager_events(run_manager, CallbackManager).on_custom_event(
            ROUTE_EVENT, data, run_id=run_manager.run_id
        )
    elif target is not None:
        _target_events(chat, target, CallbackManager).on_custom_event(
            ROUTE_EVENT, data, run_id=target.run_id
        )
    else:
        with contextlib.suppress(RuntimeError):  # no run to attach it to; metadata has it
            dispatch_custom_event(ROUTE_EVENT, data)


async def aemit(
    chat: BaseChatModel,
    data: dict[str, Any],
    run_manager: AsyncCallbackManagerForLLMRun | None,
    target: EventTarget | None,
) -> None:
    """Async :func:`emit`."""
    if run_manager is not None:
        await _run_manager_events(run_manager, AsyncCallbackManager).on_custom_event(
            ROUTE_EVENT, data, run_id=run_manager.run_id
        )
    elif target is not None:
        await _target_events(chat, target, AsyncCallbackManager).on_custom_event(
            ROUTE_EVENT, data, run_id=target.run_id
        )
    else:
        with contextlib.suppress(RuntimeError):
            await adispatch_custom_event(ROUTE_EVENT, data)


def _run_manager_events(run_manager: Any, manager_cls: type) -> Any:
    """A callback manager that fires events on ``run_manager``'s own run."""
    return manager_cls(
        handlers=run_manager.handlers,
        inheritable_handlers=run_manager.inheritable_handlers,
        parent_run_id=run_manager.run_id,
        tags=run_manager.tags,
        inheritable_tags=run_manager.inheritable_tags,
        metadata=run_manager.metadata,
        inheritable_metadata=run_manager.inheritable_metadata,
    )


def _target_events(chat: BaseChatModel, target: EventTarget, manager_cls: Any) -> Any:
    """The callback manager LangChain builds for the run, from the same arguments."""
    return manager_cls.configure(
        target.callbacks,
        chat.callbacks,
        chat.verbose,
        target.tags,
        chat.tags,
        target.metadata,
        chat.metadata,
    )
