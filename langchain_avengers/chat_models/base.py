"""AvengersChatModel: one LangChain chat model that sends each call to the best pool model."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils import from_env, secret_from_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import (
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    from langchain_avengers._compat import ChatModelBinding

from langchain_avengers.catalog.base import OpenRouterProfile
from langchain_avengers.catalog.base import load_catalog as load_catalog
from langchain_avengers.chat_models.attempts import Plan
from langchain_avengers.chat_models.clients import (
    SHARED_CLIENT_SETTINGS,
    new_client,
    pool_profile,
    resolve_profiles,
)
from langchain_avengers.chat_models.costs import AnswerCost
from langchain_avengers.chat_models.exploration import Exploration
from langchain_avengers.chat_models.options import (
    ROUTING_OPTIONS,
    check_constructor_arguments,
    check_model_kwargs,
    check_pinned_model,
    check_routing_options,
    check_top_p,
    client_overrides,
)
from langchain_avengers.chat_models.routing import NoCapableModelError, RoutingPath
from langchain_avengers.chat_models.runs import (
    CALL_KEY,
    DEFAULT_LS_MODEL,
    ROUTE_EVENT,
    EventTarget,
    RoutedCall,
)
from langchain_avengers.chat_models.serving import DEFAULT_TIMEOUT_S as DEFAULT_TIMEOUT_S
from langchain_avengers.chat_models.serving import PlanServing
from langchain_avengers.chat_models.structured import (
    StructuredMethod,
    format_tool_choice,
    structured_output,
)
from langchain_avengers.openrouter import API_KEY_ENV, BASE_URL_ENV, OPENROUTER_BASE_URL
from langchain_avengers.openrouter.messages import estimate_text_tokens, estimate_tokens
from langchain_avengers.policies.pacing import check_pacer
from langchain_avengers.policies.pins import (
    DEFAULT_PIN_TTL_S,
    InMemoryPinStore,
    Pinning,
    check_pin_store,
    check_pin_ttl,
)
from langchain_avengers.policies.routing_text import DEFAULT_ROUTING_TEXT_CHARS, RoutingTextMode
from langchain_avengers.routing.bundled import load_router
from langchain_avengers.routing.router import ClusterRouter

__all__ = ["DEFAULT_TIMEOUT_S", "ROUTE_EVENT", "AvengersChatModel", "NoCapableModelError"]

DEFAULT_BASE_URL = OPENROUTER_BASE_URL
IDENTIFYING_FIELDS = (
    "alpha",
    "nearest_clusters",
    "base_url",
    "temperature",
    "top_p",
    "max_tokens",
    "max_cost_per_call",
    "routing_text",
)
"""Fields that tell two configurations apart in traces (``_identifying_params``)."""


class AvengersChatModel(PlanServing):
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
            msg.usage_metadata["total_cost"]  # USD, also response_metadata["cost"]

            cheap = llm.bind(alpha=0.2)  # a per-chain budget
            tools_llm = llm.bind_tools([my_tool])  # only tool-capable models

    Per call: ``alpha``, ``nearest_clusters``, ``models`` (restrict the pool), ``model`` (pin one
    model), ``max_cost_per_call`` and ``session_id`` (the conversation, with
    ``pin_conversations``) may be given to ``invoke``/``bind``. Unknown constructor arguments
    are refused.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    router: ClusterRouter | str | Path | None = Field(default=None, validate_default=True)
    """A fitted ClusterRouter or the path of a saved one; ``None``: the router shipped in the
    package (four OpenRouter models)."""
    alpha: float = 0.5
    """Weight of accuracy against cost, in [0, 1]: 1 buys the best expected answer, 0 the
    cheapest."""
    nearest_clusters: int | None = None
    """Nearest clusters used for routing, in [1, the router's ``n_clusters_``]; ``None`` keeps
    the router's fitted ``nearest_clusters_`` (its ``nearest_clusters`` clamped to its cluster
    count)."""
    base_url: str = Field(default_factory=from_env(BASE_URL_ENV, default=DEFAULT_BASE_URL))
    """OpenRouter (or compatible) API base URL; env ``OPENROUTER_BASE_URL``."""
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env(API_KEY_ENV, default=None),
        validation_alias=AliasChoices("api_key", "openrouter_api_key"),
    )
    """OpenRouter API key (alias ``openrouter_api_key``); env ``OPENROUTER_API_KEY``. Never
    logged or put in metadata."""
    profiles: dict[str, OpenRouterProfile] = Field(default_factory=dict)
    """Per-model capabilities, context size and prices, merged key by key over the catalog's
    entry (the live catalog from ``avengers catalog refresh`` if there is one, else the
    bundled snapshot). A pool model known to neither needs an entry here to be used for
    tool calls, structured output or media inputs. Keys must be pool model ids."""
    models: list[str] | None = None
    """Restrict routing to these pool models; ``None`` uses the whole pool."""
    max_fallbacks: int = Field(default=2, ge=0)
    """How many next-best models to try after a retryable provider failure."""
    max_cost_per_call: float | None = None
    """USD: a call never goes to a model whose expected cost for it exceeds this (estimated
    prompt tokens at the model's input list price, plus its mean cost per answer on the
    query's nearest calibration clusters); if every capable model does, the call fails before
    any request. ``None``: no cap. Also per call and with ``bind``."""
    pacer: Annotated[Any, BeforeValidator(check_pacer)] = None
    """A spend pacer (any object with ``alpha()`` and ``record(cost_usd)``, such as
    ``SpendPacer``): every answered call reports its cost to it once, and calls route with
    ``pacer.alpha()`` unless given an alpha per call, with ``bind``/``with_routing`` or
    ``with_structured_output(alpha=...)``; the ``alpha`` field is then not used."""
    pin_conversations: bool = False
    """Keep each conversation on the model routed for its first turn (while it can serve
    it, for ``pin_ttl`` seconds after its last call). A conversation is the call's
    ``session_id`` or its config's ``configurable.thread_id``; calls with neither are routed
    as usual."""
    pin_ttl: Annotated[float, BeforeValidator(check_pin_ttl)] = DEFAULT_PIN_TTL_S
    """Seconds an idle conversation stays pinned."""
    pin_store: Annotated[Any, BeforeValidator(check_pin_store)] = None
    """Where pins live: a ``PinStore`` or a LangGraph ``BaseStore`` (shared by the workers
    that share it); ``None``: an in-memory LRU of this model and its copies."""
    routing_text: RoutingTextMode = "latest_human"
    """What routing reads: ``"latest_human"`` (the latest human message) or
    ``"conversation"`` (that message with the system prompt and earlier turns, up to
    ``routing_text_chars``)."""
    routing_text_chars: int = Field(default=DEFAULT_ROUTING_TEXT_CHARS, ge=1)
    """Character budget of ``routing_text="conversation"``."""
    explore: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    """Probability, in [0, 1], of sending a routed call to a candidate drawn uniformly from
    those that can serve it (capabilities, context and cost caps still apply; pinned and sticky
    calls are never explored). The answering model's propensity goes in the run metadata
    (``avengers_propensity``, ``avengers_explored``), so feedback on explored calls can teach a
    router what its own choices never show (``avengers harvest traces``). Costs a little
    accuracy or money on the explored calls; ``0`` (default) never explores."""

    _pinning: Pinning | None = PrivateAttr(default=None)
    """Pins of this model and its copies (used when ``pin_conversations`` is on)."""
    _alpha_bound: bool = PrivateAttr(default=False)
    """Whether ``alpha`` was set with ``bind``/``with_routing`` (it then wins over the pacer)."""
    _explore_rng: random.Random = PrivateAttr(default_factory=random.Random)
    """Source of the exploration draws (shared with copies)."""
    _preset: Plan | None = PrivateAttr(default=None)
    """A plan routed elsewhere (the agent middleware) that every call of this copy follows."""

    def __init__(self, **kwargs: Any) -> None:
        """Check every argument before pydantic sees them, so errors name them plainly.

        Raises:
            ValueError: an unknown argument (with the nearest known one), ``model=``, a bad
                ``alpha``/``nearest_clusters``/``models``/``model_kwargs``.
            RouterFileError: a router path that does not hold a valid router.
        """
        check_constructor_arguments(type(self).model_fields, kwargs)
        check_model_kwargs(kwargs.get("model_kwargs"))
        router = load_router(kwargs.get("router"))
        kwargs["router"] = router
        options = {k: kwargs[k] for k in ROUTING_OPTIONS if kwargs.get(k) is not None}
        kwargs.update(
            check_routing_options(options, router.models_, router.n_clusters_, "AvengersChatModel")
        )
        check_top_p(kwargs.get("top_p"))
        client_overrides(kwargs.get("model_settings") or {}, router.models_)
        super().__init__(**kwargs)

    @field_validator("router", mode="before")
    @classmethod
    def _router_from(cls, value: Any) -> ClusterRouter:
        return load_router(value)

    @field_serializer("router", when_used="json")
    def _describe_router(self, router: ClusterRouter) -> dict[str, Any]:
        return {"models": self.pool, "data_fingerprint": router.data_fingerprint_}

    @field_serializer("pacer", "pin_store", when_used="json")
    def _describe_object(self, value: Any) -> str | None:
        return None if value is None else type(value).__name__

    @model_validator(mode="after")
    def _build_clients(self) -> AvengersChatModel:
        if self.api_key is None:
            msg = (
                "api_key: no OpenRouter API key; pass api_key=... or set OPENROUTER_API_KEY "
                "(routing alone works without one: see ClusterRouter.route)"
            )
            raise ValueError(msg)
        unknown = sorted(set(self.profiles) - set(self.pool))
        if unknown:
            msg = f"profiles: model id(s) {unknown} are not in the router's pool {self.pool}"
            raise ValueError(msg)
        overrides = client_overrides(self.model_settings, self.pool)
        sampling = {field: getattr(self, name) for name, field in SHARED_CLIENT_SETTINGS.items()}
        self._clients = {
            model: new_client(
                model,
                overrides.get(model, {}),
                base_url=self.base_url,
                api_key=self.api_key,
                sampling=sampling,
            )
            for model in self.pool
        }
        self._profiles = resolve_profiles(self.pool, self.profiles)
        if self.profile is None:
            self.profile = pool_profile(self._profiles.values())
        store = self.pin_store if self.pin_store is not None else InMemoryPinStore()
        self._pinning = Pinning(store, self.pin_ttl)
        return self

    def profile_of(self, model: str) -> OpenRouterProfile | None:
        """The resolved profile of a pool model (a copy), or ``None`` if no catalog knows it."""
        profile = self._profiles.get(model)
        return None if profile is None else OpenRouterProfile(**profile)

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
        router = {"router_models": self.pool, "router_fingerprint": self.router_fingerprint}
        return {**router, **{name: getattr(self, name) for name in IDENTIFYING_FIELDS}}

    @property
    def router_fingerprint(self) -> str:
        """The fingerprint of the calibration data the router was fitted on."""
        return self.fitted_router.data_fingerprint_

    # ------------------------------------------------------------------ tracing

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """The routed model as ``ls_model_name`` (known before the run starts)."""
        call = kwargs.get(CALL_KEY)
        model = call.plan.first_model if call is not None and call.plan else kwargs.get("model")
        client = self._clients.get(model) if isinstance(model, str) else None
        params = LangSmithParams(
            ls_provider="openrouter",
            ls_model_name=model if isinstance(model, str) else DEFAULT_LS_MODEL,
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", (client or self).temperature),
        )
        max_tokens = kwargs.get("max_tokens", (client or self).max_tokens)
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

    @property
    def _keeps_conversations(self) -> bool:
        return self.pin_conversations

    def _routing_path(self) -> RoutingPath:
        """This model's routing path: the one the agent middleware shares."""
        return RoutingPath(
            router=self.fitted_router,
            profiles=self._profiles,
            pool=tuple(self.pool),
            alpha=self.alpha,
            alpha_is_bound=self._alpha_bound,
            nearest_clusters=self.nearest_clusters,
            models=tuple(self.models) if self.models else None,
            max_cost_per_call=self.max_cost_per_call,
            routing_text=self.routing_text,
            routing_text_chars=self.routing_text_chars,
            pacer=self.pacer,
            pinning=self._pinning if self.pin_conversations else None,
            max_fallbacks=self.max_fallbacks,
            max_retries=self.max_retries,
            exploration=Exploration(self.explore, self._explore_rng),
        )

    def _route(
        self, messages: list[BaseMessage], kwargs: Mapping[str, Any], target: EventTarget | None
    ) -> RoutedCall:
        """Route one call; an error is kept to be raised inside the call's run."""
        try:
            if self._preset is not None:
                return RoutedCall(self._preset.fresh(), None, target)
            path = self._routing_path()
            plan = path.route(path.chat_call(messages, kwargs))
        except Exception as error:
            return RoutedCall(None, error, target)
        return RoutedCall(plan, None, target)

    async def _aroute(
        self, messages: list[BaseMessage], kwargs: Mapping[str, Any], target: EventTarget | None
    ) -> RoutedCall:
        """Async :meth:`_route`: the embedder and the pin store do not block the event loop."""
        try:
            if self._preset is not None:
                return RoutedCall(self._preset.fresh(), None, target)
            path = self._routing_path()
            plan = await path.aroute(path.chat_call(messages, kwargs))
        except Exception as error:
            return RoutedCall(None, error, target)
        return RoutedCall(plan, None, target)

    def _following(self, plan: Plan, **updates: Any) -> AvengersChatModel:
        """A copy whose every call follows ``plan`` (routed by the agent middleware).

        The copy reports no cost to the pacer: the middleware that routed it does.
        """
        copy = self.model_copy(update={"pacer": None, **updates})
        copy._preset = plan
        return copy

    def _record(self, cost: AnswerCost) -> None:
        """Tell the pacer what an answered call cost (calls of unknown cost are not told)."""
        if self.pacer is not None and cost.total is not None:
            self.pacer.record(cost.total)

    # ------------------------------------------------------------------ tools & structure

    def bind(self, **kwargs: Any) -> ChatModelBinding:
        """Bind call arguments; routing options stay with the model through later wrapping.

        Routing options (:class:`RoutingOptions`) are set on a copy of this model (sharing its
        clients) rather than on the binding, so
        ``llm.bind(alpha=0.2).bind_tools(...)``, ``.with_structured_output(...)`` or an agent
        built on the binding keep the budget.
        A bound ``model`` is checked against the pool now.
        """
        routing = {k: kwargs.pop(k) for k in ROUTING_OPTIONS if k in kwargs}
        if "model" in kwargs:
            check_pinned_model(kwargs["model"], self.pool)
        model = self.with_routing(**routing) if routing else self
        return super(AvengersChatModel, model).bind(**kwargs)

    def with_routing(self, **options: Any) -> AvengersChatModel:
        """A copy with other routing options; clients, pins and pacer shared.

        Options: ``alpha``, ``nearest_clusters``, ``models``, ``max_cost_per_call``.

        Raises:
            ValueError: an unknown option, alpha outside [0, 1], or a model not in the pool.
        """
        router = self.fitted_router
        checked = check_routing_options(options, router.models_, router.n_clusters_, "with_routing")
        copy = self.model_copy(update=checked)
        copy._alpha_bound = self._alpha_bound or "alpha" in checked
        return copy

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
            kwargs["tool_choice"] = format_tool_choice(tool_choice, formatted)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: StructuredMethod = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict | Any]:
        """Return output matching ``schema``; only models with structured-output support serve it.

        Per-call routing options reach the model: ``.invoke(x, alpha=0.1)``.

        Args:
            schema: A pydantic class, TypedDict, JSON schema or OpenAI tool schema.
            include_raw: Return ``{"raw", "parsed", "parsing_error"}`` instead of raising on a
                parse error.
            method: "function_calling" (a forced tool call), "json_schema" (OpenAI
                ``response_format``) or "json_mode".
            strict: Ask for schema-exact output.
            kwargs: Routing options (``alpha``, ``nearest_clusters``, ``models``); anything else
            raises.
        """
        llm = self.with_routing(**kwargs) if kwargs else self
        return structured_output(llm, schema, include_raw=include_raw, method=method, strict=strict)
