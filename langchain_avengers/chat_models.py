"""AvengersChatModel: one LangChain chat model that sends each call to the best pool model."""

from __future__ import annotations

import contextlib
import contextvars
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import LangSmithParams
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    UsageMetadata,
)
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils import from_env, secret_from_env
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import _ChatModelBinding

from langchain_avengers._openrouter import (
    OpenRouterChatOpenAI,
    call_cost,
    describe_failure,
    estimate_text_tokens,
    estimate_tokens,
    is_retryable,
    media_inputs,
    message_text,
)
from langchain_avengers.catalog import OpenRouterProfile, load_catalog
from langchain_avengers.pool import load_default_router
from langchain_avengers.router import ClusterRouter

__all__ = ["ROUTE_EVENT", "AvengersChatModel"]

ROUTE_EVENT = "avengers_route"
"""Name of the custom callback event carrying each routing decision."""
DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
ROUTER_KWARGS = ("alpha", "models", "top_p", "model", "avengers_capabilities")
ROUTING_FIELDS = ("alpha", "top_p", "models")
"""Per-chain routing options that ``bind`` keeps on the model itself (see ``bind``)."""
_STREAM_RUN: contextvars.ContextVar[tuple[uuid.UUID, RunnableConfig] | None] = (
    contextvars.ContextVar("avengers_stream_run", default=None)
)


class NoCapableModelError(ValueError):
    """No model of the pool can serve a call (raised before any HTTP request)."""


@dataclass
class _Plan:
    """One call's routing: the models to try in order and what to say about it."""

    order: list[str]
    client_kwargs: dict[str, Any]
    metadata: dict[str, Any]
    candidates: dict[str, dict[str, Any]]
    remaining: int
    """Fallbacks still allowed."""
    failures: list[dict[str, Any]] = field(default_factory=list)

    def fall_back_or_raise(self, model: str, error: Exception) -> None:
        """Record a retryable failure so the next model is tried; re-raise anything else."""
        if not is_retryable(error) or model == self.order[-1] or not self.remaining:
            if self.failures and hasattr(error, "add_note"):  # Python 3.11+
                tried = ", ".join(f"{f['model']} ({f['error']})" for f in self.failures)
                error.add_note(f"avengers: fell back from {tried} before {model} failed too")
            raise error
        self.remaining -= 1
        self.failures.append(describe_failure(model, error))

    def report(self, model: str) -> dict[str, Any]:
        """The decision as seen when ``model`` is tried (after any fallbacks so far)."""
        chosen = self.candidates.get(model, {})
        return {
            **self.metadata,
            "model": model,
            "expected_cost": chosen.get("expected_cost"),
            "expected_accuracy": chosen.get("expected_accuracy"),
            "fallbacks": list(self.failures),
        }


class AvengersChatModel(BaseChatModel):
    """Routes every call to one OpenRouter model with the Avengers-Pro cluster router.

    Routing reads the text of the latest human message (the whole conversation is then sent
    to the chosen model). It is deterministic: the same human turn, tools and budget always
    pick the same model, so a tool-calling loop stays on one model.

    Setup:
        .. code-block:: bash

            pip install langchain-avengers
            export OPENROUTER_API_KEY="sk-or-..."

    Example:
        .. code-block:: python

            from langchain_avengers import AvengersChatModel

            llm = AvengersChatModel(alpha=0.5)
            msg = llm.invoke("What is the capital of Australia?")
            msg.response_metadata["model_name"]  # e.g. "mistralai/mistral-large-2512"
            msg.response_metadata["avengers"]["actual_cost"]  # USD

            cheap = llm.bind(alpha=0.2)  # a per-chain budget
            tools_llm = llm.bind_tools([my_tool])  # only tool-capable models

    Per call: ``alpha``, ``top_p``, ``models`` (restrict the pool) and ``model`` (pin one
    model) may be given to ``invoke``/``bind``.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    router: ClusterRouter | str | Path | None = Field(default=None, validate_default=True)
    """A fitted ClusterRouter or the path of a saved one; ``None``: the router shipped in the
    package (four OpenRouter models)."""
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    """Weight of accuracy against cost: 1 buys the best expected answer, 0 the cheapest."""
    top_p: int | None = None
    """Nearest clusters used for routing, in [1, the router's ``n_clusters_``]; ``None`` keeps
    the router's fitted ``top_p_`` (its ``top_p`` clamped to its cluster count)."""
    base_url: str = Field(default_factory=from_env("OPENROUTER_BASE_URL", default=DEFAULT_BASE_URL))
    """OpenRouter (or compatible) API base URL; env ``OPENROUTER_BASE_URL``."""
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("OPENROUTER_API_KEY", default=None)
    )
    """OpenRouter API key; env ``OPENROUTER_API_KEY``. Never logged or put in metadata."""
    temperature: float | None = None
    """Sampling temperature passed to the chosen model."""
    max_tokens: int | None = Field(default=None, alias="max_completion_tokens")
    """Most tokens to generate."""
    timeout: float | None = Field(default=None, alias="request_timeout")
    """Seconds before a request to a model times out (then the next model is tried)."""
    max_retries: int | None = None
    """Retries of one model by the OpenAI client before falling back to the next model."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Default stop sequences."""
    streaming: bool = False
    """Stream internally even for ``invoke`` (callbacks then see tokens)."""
    model_kwargs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Extra ``ChatOpenAI`` keyword arguments per model id, e.g. ``{"google/gemini-2.5-pro":
    {"reasoning_effort": "low"}}``."""
    profiles: dict[str, OpenRouterProfile] = Field(default_factory=dict)
    """Per-model capabilities, context size and prices, merged key by key over the catalog's
    entry (the live catalog from ``avengers catalog refresh`` if there is one, else the
    bundled snapshot). A pool model known to neither needs an entry here to be used for
    tool calls, structured output or media inputs. Keys must be pool model ids."""
    models: list[str] | None = None
    """Restrict routing to these pool models; ``None`` uses the whole pool."""
    max_fallbacks: int = Field(default=2, ge=0)
    """How many next-best models to try after a retryable provider failure."""

    _clients: dict[str, OpenRouterChatOpenAI] = PrivateAttr(default_factory=dict)
    _profiles: dict[str, OpenRouterProfile] = PrivateAttr(default_factory=dict)
    """Resolved profile of every pool model found in ``profiles`` or a catalog."""

    @field_validator("router", mode="before")
    @classmethod
    def _load_router(cls, value: Any) -> ClusterRouter:
        if value is None:
            return load_default_router()
        if isinstance(value, (str, Path)):
            return ClusterRouter.load(value)
        if not isinstance(value, ClusterRouter):
            msg = f"router: expected a fitted ClusterRouter or a path, got {type(value).__name__}"
            raise TypeError(msg)
        return value

    @model_validator(mode="after")
    def _build_clients(self) -> AvengersChatModel:
        if self.api_key is None:
            msg = (
                "api_key: no OpenRouter API key; pass api_key=... or set OPENROUTER_API_KEY "
                "(routing alone works without one: see ClusterRouter.route)"
            )
            raise ValueError(msg)
        for name, per_model in (("model_kwargs", self.model_kwargs), ("profiles", self.profiles)):
            unknown = sorted(set(per_model) - set(self.pool))
            if unknown:
                msg = f"{name}: model id(s) {unknown} are not in the pool {self.pool}"
                raise ValueError(msg)
        self._clients = {model: self._new_client(model) for model in self.pool}
        self._profiles = self._resolve_profiles()
        return self

    def _resolve_profiles(self) -> dict[str, OpenRouterProfile]:
        """Each pool model's profile: the user's entry over the catalog's; warn on unknowns."""
        catalog = load_catalog()
        profiles: dict[str, Any] = {}
        for model in self.pool:
            known = catalog.get(model)
            given = self.profiles.get(model)
            if known is not None or given is not None:
                profiles[model] = {**(known or {}), **(given or {})}
        unknown = [m for m in self.pool if m not in profiles]
        if unknown:
            hints = "; ".join(
                f"{m} (nearest known: {', '.join(catalog.nearest(m)) or 'none'})" for m in unknown
            )
            warnings.warn(
                f"no profile for pool model(s) {hints}: they serve plain text calls only (no "
                "tool calls, structured output or media inputs) and have no list prices. "
                "Check the ids, run `avengers catalog refresh`, or pass profiles={...}. "
                f"Catalog: {catalog.describe()}",
                stacklevel=3,
            )
        return profiles

    def profile_of(self, model: str) -> OpenRouterProfile | None:
        """The resolved profile of a pool model (a copy), or ``None`` if no catalog knows it."""
        profile = self._profiles.get(model)
        return None if profile is None else OpenRouterProfile(**profile)

    def _new_client(self, model: str) -> OpenRouterChatOpenAI:
        settings: dict[str, Any] = {
            "model": model,
            "base_url": self.base_url,
            "api_key": self.api_key,
            "organization": None,  # never forward an OpenAI org id to OpenRouter
            "stream_usage": True,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout": self.timeout,
        }
        if self.max_retries is not None:
            settings["max_retries"] = self.max_retries
        return OpenRouterChatOpenAI(**settings, **self.model_kwargs.get(model, {}))

    @property
    def fitted_router(self) -> ClusterRouter:
        """The router, loaded (the field validator turns paths and ``None`` into one)."""
        assert isinstance(self.router, ClusterRouter)
        return self.router

    @property
    def pool(self) -> list[str]:
        """Model ids the router can choose from."""
        return list(self.fitted_router.models_)

    @property
    def _llm_type(self) -> str:
        return "avengers-openrouter"

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Constructor arguments that are secrets, with their environment variables."""
        return {"api_key": "OPENROUTER_API_KEY"}

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Not serialisable: core's loader only accepts LangChain's own namespaces."""
        return False

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "router_models": self.pool,
            "router_fingerprint": self.fitted_router.data_fingerprint_,
            "alpha": self.alpha,
            "top_p": self.top_p,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="openrouter",
            ls_model_name=kwargs.get("model") or "avengers-router",
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
        )
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def get_num_tokens(self, text: str) -> int:
        """Offline estimate (4 UTF-8 bytes per token): the pool has no single tokenizer."""
        if self.custom_get_token_ids is not None:
            return len(self.custom_get_token_ids(text))
        return estimate_text_tokens(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """The estimate routing uses to rule out models whose context is too small."""
        schemas = [convert_to_openai_tool(t) for t in tools] if tools else None
        return estimate_tokens(messages, schemas)

    # ------------------------------------------------------------------ routing

    def _plan(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> _Plan:
        """Decide which models to try, in order, before any HTTP request."""
        options = {k: kwargs.pop(k) for k in ROUTER_KWARGS if k in kwargs}
        alpha = float(options.get("alpha", self.alpha))
        top_p = options.get("top_p", self.top_p)
        needs = _required_capabilities(kwargs, options.get("avengers_capabilities", ()))
        needs |= media_inputs(messages)
        candidates = self._candidates(options.get("models", self.models), options.get("model"))
        tokens = estimate_tokens(messages, kwargs.get("tools"))
        excluded = {m: r for m in candidates if (r := self._exclusion(m, needs, tokens))}
        usable = [m for m in candidates if m not in excluded]
        if not usable:
            msg = (
                f"no model of the pool can serve this call: it needs {sorted(needs) or 'nothing'}"
                f" and ~{tokens} input tokens; excluded: "
                + "; ".join(f"{m} ({r})" for m, r in excluded.items())
            )
            raise NoCapableModelError(msg)
        pinned = "model" in options
        decision = self.fitted_router.route(
            _routing_text(messages), alpha, allowed_models=usable, top_p=top_p
        )
        metadata: dict[str, Any] = {
            "alpha": alpha,
            "top_p": decision.top_p,
            "routed": not pinned,
            "required_capabilities": sorted(needs),
            "estimated_input_tokens": tokens,
            "excluded": excluded,
            "candidates": [asdict(c) for c in decision.candidates],
            "clusters": [asdict(c) for c in decision.clusters],
        }
        return _Plan(
            order=usable if pinned else [c.model for c in decision.candidates],
            client_kwargs=kwargs,
            metadata=metadata,
            candidates={c.model: asdict(c) for c in decision.candidates},
            remaining=self.max_fallbacks,
        )

    def _candidates(self, models: Sequence[str] | None, pinned: str | None) -> list[str]:
        requested = [pinned] if pinned is not None else models
        if requested is None:
            return self.pool
        if isinstance(requested, str):
            requested = [requested]
        unknown = [m for m in requested if m not in self._clients]
        if unknown or not requested:
            what = "model" if pinned is not None else "models"
            msg = f"{what}: {unknown or 'empty list'}; choose among the pool {self.pool}"
            raise ValueError(msg)
        return list(dict.fromkeys(requested))

    def _exclusion(self, model: str, needs: set[str], tokens: int) -> str | None:
        """Why ``model`` cannot serve the call, or None."""
        profile = self._profiles.get(model)
        if profile is None:
            if needs:
                return (
                    f"no profile for this model, so its {', '.join(sorted(needs))} support "
                    "is unknown (pass profiles={...} or run `avengers catalog refresh`)"
                )
            return None
        stated: Mapping[str, Any] = profile
        denied = sorted(c for c in needs if c in stated and not stated[c])
        if denied:
            return "its profile says no " + ", ".join(denied) + " support"
        unstated = sorted(c for c in needs if c not in stated)
        if unstated:
            return "its profile does not state " + ", ".join(unstated) + " support"
        limit = profile.get("max_input_tokens")
        if limit is not None and tokens > limit:
            return f"~{tokens} input tokens exceed max_input_tokens={limit}"
        return None

    def _finish(
        self, message: AIMessage, model: str, openrouter_cost: float | None
    ) -> dict[str, Any]:
        """The cost part of the metadata, known once the answer is in."""
        cost, source = call_cost(message, openrouter_cost, self._profiles.get(model))
        return {"actual_cost": cost, "cost_source": source}

    def _annotate(self, result: ChatResult, plan: _Plan, model: str) -> ChatResult:
        generation = result.generations[0]
        message = generation.message
        token_usage = (result.llm_output or {}).get("token_usage") or {}
        assert isinstance(message, AIMessage)
        avengers = {
            **plan.report(model),
            **self._finish(message, model, token_usage.get("cost")),
        }
        message.response_metadata["model_name"] = model
        message.response_metadata["avengers"] = avengers
        llm_output = {**(result.llm_output or {}), "model_name": model, "avengers": avengers}
        return ChatResult(generations=[generation, *result.generations[1:]], llm_output=llm_output)

    # ------------------------------------------------------------------ events

    def _emit(self, data: dict[str, Any], run_manager: CallbackManagerForLLMRun | None) -> None:
        if run_manager is not None:
            _manager_for(run_manager, CallbackManager).on_custom_event(
                ROUTE_EVENT, data, run_id=run_manager.run_id
            )
            return
        stream_run = _STREAM_RUN.get()
        if stream_run is not None:
            run_id, config = stream_run
            _configured(config, self, CallbackManager).on_custom_event(
                ROUTE_EVENT, data, run_id=run_id
            )
            return
        with contextlib.suppress(RuntimeError):  # no run to attach it to; metadata has it
            dispatch_custom_event(ROUTE_EVENT, data)

    async def _aemit(
        self, data: dict[str, Any], run_manager: AsyncCallbackManagerForLLMRun | None
    ) -> None:
        if run_manager is not None:
            await _manager_for(run_manager, AsyncCallbackManager).on_custom_event(
                ROUTE_EVENT, data, run_id=run_manager.run_id
            )
            return
        stream_run = _STREAM_RUN.get()
        if stream_run is not None:
            run_id, config = stream_run
            await _configured(config, self, AsyncCallbackManager).on_custom_event(
                ROUTE_EVENT, data, run_id=run_id
            )
            return
        with contextlib.suppress(RuntimeError):
            await adispatch_custom_event(ROUTE_EVENT, data)

    # ------------------------------------------------------------------ calls

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan = self._plan(messages, kwargs)
        for model in plan.order:
            self._emit(plan.report(model), run_manager)
            try:
                result = self._clients[model]._generate(
                    messages, stop=stop or self.stop, run_manager=run_manager, **plan.client_kwargs
                )
            except Exception as error:
                plan.fall_back_or_raise(model, error)
                continue
            return self._annotate(result, plan, model)
        msg = "unreachable: the last attempt returns or raises"
        raise AssertionError(msg)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan = self._plan(messages, kwargs)
        for model in plan.order:
            await self._aemit(plan.report(model), run_manager)
            try:
                result = await self._clients[model]._agenerate(
                    messages, stop=stop or self.stop, run_manager=run_manager, **plan.client_kwargs
                )
            except Exception as error:
                plan.fall_back_or_raise(model, error)
                continue
            return self._annotate(result, plan, model)
        msg = "unreachable: the last attempt returns or raises"
        raise AssertionError(msg)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        plan = self._plan(messages, kwargs)
        for model in plan.order:
            self._emit(plan.report(model), run_manager)
            chunks = self._clients[model]._stream(
                messages, stop=stop or self.stop, **plan.client_kwargs
            )
            try:
                first = next(chunks, None)
            except Exception as error:
                plan.fall_back_or_raise(model, error)
                continue
            for chunk in _annotated_stream(_StreamTally(self, plan, model), first, chunks):
                if run_manager is not None:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
            return

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        plan = self._plan(messages, kwargs)
        for model in plan.order:
            await self._aemit(plan.report(model), run_manager)
            chunks = self._clients[model]._astream(
                messages, stop=stop or self.stop, **plan.client_kwargs
            )
            try:
                first = await anext(chunks, None)
            except Exception as error:
                plan.fall_back_or_raise(model, error)
                continue
            tally = _StreamTally(self, plan, model)
            async for chunk in _aannotated_stream(tally, first, chunks):
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
            return

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Stream the chosen model's answer; the routing event goes to this model's run."""
        config, previous = _remember_stream_run(config)
        try:
            yield from super().stream(input, config, stop=stop, **kwargs)
        finally:
            _STREAM_RUN.set(previous)

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async :meth:`stream`."""
        config, previous = _remember_stream_run(config)
        try:
            async for chunk in super().astream(input, config, stop=stop, **kwargs):
                yield chunk
        finally:
            _STREAM_RUN.set(previous)

    # ------------------------------------------------------------------ tools & structure

    def bind(self, **kwargs: Any) -> _ChatModelBinding:
        """Bind call arguments; routing options stay with the model through later wrapping.

        ``alpha``, ``top_p`` and ``models`` are set on a copy of this model (sharing its
        clients) rather than on the binding, so ``llm.bind(alpha=0.2).bind_tools(...)``,
        ``.with_structured_output(...)`` or an agent built on the binding keep the budget.
        """
        routing = {k: kwargs.pop(k) for k in ROUTING_FIELDS if k in kwargs}
        model = self.with_routing(**routing) if routing else self
        return super(AvengersChatModel, model).bind(**kwargs)

    def with_routing(self, **options: Any) -> AvengersChatModel:
        """A copy with other routing options (``alpha``, ``top_p``, ``models``); clients shared.

        Raises:
            ValueError: an unknown option, alpha outside [0, 1], or a model not in the pool.
        """
        unknown = sorted(set(options) - set(ROUTING_FIELDS))
        if unknown:
            msg = f"with_routing: unknown options {unknown}; expected some of {ROUTING_FIELDS}"
            raise ValueError(msg)
        if "alpha" in options and not 0.0 <= float(options["alpha"]) <= 1.0:
            msg = f"alpha must be in [0, 1], got {options['alpha']!r}"
            raise ValueError(msg)
        if options.get("models") is not None:
            options["models"] = self._candidates(options["models"], None)
        return self.model_copy(update=options)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable | BaseTool],
        *,
        tool_choice: dict | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; calls then go only to models whose profile supports tool calling.

        Args:
            tools: Tools in any form LangChain converts to OpenAI tool schemas.
            tool_choice: "auto", "none", "required"/"any", a tool name, True (the only tool)
                or an OpenAI tool-choice dict; anything but "auto"/"none" also requires
                ``tool_choice`` support.
            strict: Ask for schema-exact arguments.
            parallel_tool_calls: Allow several tool calls in one answer.
            kwargs: Further arguments bound to every call.
        """
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = _format_tool_choice(tool_choice, formatted)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict | Any]:
        """Return output matching ``schema``; only models with structured-output support serve it.

        Args:
            schema: A pydantic class, TypedDict, JSON schema or OpenAI tool schema.
            include_raw: Return ``{"raw", "parsed", "parsing_error"}`` instead of raising on a
                parse error.
            method: "function_calling" (a forced tool call), "json_schema" (OpenAI
                ``response_format``) or "json_mode".
            strict: Ask for schema-exact output.
            kwargs: Routing options (``alpha``, ``top_p``, ``models``); anything else raises.
        """
        routing = {k: kwargs.pop(k) for k in ROUTING_FIELDS if k in kwargs}
        if kwargs:
            msg = f"with_structured_output: unsupported arguments {sorted(kwargs)}"
            raise ValueError(msg)
        if routing:
            return self.with_routing(**routing).with_structured_output(
                schema, include_raw=include_raw, method=method, strict=strict
            )
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        parser: Runnable
        if method == "function_calling":
            tool = convert_to_openai_tool(schema, strict=strict)
            name = tool["function"]["name"]
            llm = self.bind_tools(
                [schema],
                tool_choice=name,
                strict=strict,
                parallel_tool_calls=False,
                ls_structured_output_format=trace,
                avengers_capabilities=("structured_output",),
            )
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            response_format = (
                _json_schema_format(schema, strict)
                if method == "json_schema"
                else {"type": "json_object"}
            )
            llm = self.bind(
                response_format=response_format,
                ls_structured_output_format=trace,
                avengers_capabilities=("structured_output",),
            )
            parser = (
                PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                if is_pydantic
                else JsonOutputParser()
            )
        else:
            msg = f"method: expected function_calling, json_schema or json_mode, got {method!r}"
            raise ValueError(msg)
        if not include_raw:
            return llm | parser
        parse = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        keep_error = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parse.with_fallbacks(
            [keep_error], exception_key="parsing_error"
        )


# ---------------------------------------------------------------------- helpers


def _routing_text(messages: list[BaseMessage]) -> str:
    """The text routing reads: the latest human message, else the latest message."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message_text(message)
    return message_text(messages[-1]) if messages else ""


def _required_capabilities(kwargs: Mapping[str, Any], marked: Sequence[str]) -> set[str]:
    needs = set(marked)
    if kwargs.get("tools"):
        needs.add("tool_calling")
        if kwargs.get("tool_choice") not in (None, "auto", "none"):
            needs.add("tool_choice")
    if kwargs.get("response_format") is not None:
        needs.add("structured_output")
    return needs


def _format_tool_choice(choice: dict | str | bool, tools: list[dict[str, Any]]) -> Any:
    if choice is True:
        if len(tools) != 1:
            msg = f"tool_choice=True needs exactly one tool, got {len(tools)}"
            raise ValueError(msg)
        choice = tools[0]["function"]["name"]
    if choice == "any":
        return "required"
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


def _json_schema_format(schema: dict[str, Any] | type, strict: bool | None) -> dict[str, Any]:
    json_schema = convert_to_json_schema(schema)
    name = json_schema.get("title", "output")
    spec: dict[str, Any] = {"name": name, "schema": json_schema}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def _manager_for(run_manager: Any, manager_cls: type) -> Any:
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


def _configured(config: RunnableConfig, model: BaseChatModel, manager_cls: Any) -> Any:
    """The callback manager core builds for a ``.stream()`` run, from the same config."""
    return manager_cls.configure(
        config.get("callbacks"),
        model.callbacks,
        model.verbose,
        config.get("tags"),
        model.tags,
        config.get("metadata"),
        model.metadata,
    )


def _remember_stream_run(
    config: RunnableConfig | None,
) -> tuple[RunnableConfig, tuple[uuid.UUID, RunnableConfig] | None]:
    """Fix the run id of a ``.stream()`` call so ``_stream`` can fire events on that run.

    LangChain core calls ``_stream`` without a run manager; the run id chosen here is the
    one core uses for the model's run.
    """
    config = ensure_config(config)
    run_id = config.get("run_id") or uuid.uuid4()
    config = {**config, "run_id": run_id}
    previous = _STREAM_RUN.get()
    _STREAM_RUN.set((run_id, config))
    return config, previous


@dataclass
class _StreamTally:
    """Decorates one model's stream: the decision on the first chunk, cost on the last."""

    chat: AvengersChatModel
    plan: _Plan
    model: str
    cost: float | None = None
    usage: UsageMetadata | None = None
    count: int = 0

    def take(self, chunk: ChatGenerationChunk) -> ChatGenerationChunk:
        """Note cost and usage; the model name goes on the first chunk only (it would merge)."""
        meta = chunk.message.response_metadata
        if "openrouter_cost" in meta:
            self.cost = meta.pop("openrouter_cost")
        if isinstance(chunk.message, AIMessageChunk) and chunk.message.usage_metadata:
            self.usage = chunk.message.usage_metadata
        if chunk.generation_info:
            chunk.generation_info.pop("model_name", None)
        if not self.count:
            meta["avengers"] = self.plan.report(self.model)
            meta["model_name"] = self.model
        self.count += 1
        return chunk

    def last(self) -> ChatGenerationChunk:
        """The closing chunk: the cost, and the whole decision if no chunk came before."""
        answer = AIMessage(content="", usage_metadata=self.usage)
        avengers = self.chat._finish(answer, self.model, self.cost)
        metadata: dict[str, Any] = {"avengers": avengers}
        if not self.count:
            metadata = {
                "avengers": {**self.plan.report(self.model), **avengers},
                "model_name": self.model,
            }
        last = AIMessageChunk(content="", response_metadata=metadata, chunk_position="last")
        return ChatGenerationChunk(message=last)


def _annotated_stream(
    tally: _StreamTally,
    first: ChatGenerationChunk | None,
    rest: Iterator[ChatGenerationChunk],
) -> Iterator[ChatGenerationChunk]:
    if first is not None:
        yield tally.take(first)
    for chunk in rest:
        yield tally.take(chunk)
    yield tally.last()


async def _aannotated_stream(
    tally: _StreamTally,
    first: ChatGenerationChunk | None,
    rest: AsyncIterator[ChatGenerationChunk],
) -> AsyncIterator[ChatGenerationChunk]:
    if first is not None:
        yield tally.take(first)
    async for chunk in rest:
        yield tally.take(chunk)
    yield tally.last()
