"""The chat model's options: one model of routing options, and strict checks of the rest.

:class:`RoutingOptions` is where alpha, the cluster count, the allowed models and the per-call
cost cap are checked, whether they come from the constructor, ``bind``/``with_routing``, a
call's keyword arguments or an agent run's ``runtime.context``. Every refusal is a
``ValueError`` naming the argument, what was expected and, for a misspelt name, the nearest
known one.
"""

from __future__ import annotations

import difflib
import functools
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_openai import ChatOpenAI
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo

from langchain_avengers.routing.params import check_alpha, check_nearest_clusters

__all__ = [
    "ROUTING_OPTIONS",
    "RoutingOptions",
    "check_alpha",
    "check_constructor_arguments",
    "check_max_cost",
    "check_models",
    "check_nearest_clusters",
    "check_pinned_model",
    "check_routing_options",
    "check_session_id",
    "check_top_p",
    "client_overrides",
]

ONE_MODEL_ARGUMENTS = ("model", "model_name")
REFUSED_CLIENT_SETTINGS = {
    "model_name": "the model id is the key of this entry",
    "openai_api_key": "one OpenRouter key serves every model (api_key=...)",
    "openai_api_base": "every model goes through one endpoint (base_url=...)",
    "openai_organization": "OpenRouter has no organisation ids",
    "openai_proxy": "every model goes through one endpoint (base_url=...)",
    "http_client": "every model goes through one endpoint (base_url=...)",
    "http_async_client": "every model goes through one endpoint (base_url=...)",
    "client": "the clients are built by AvengersChatModel",
    "async_client": "the clients are built by AvengersChatModel",
    "root_client": "the clients are built by AvengersChatModel",
    "root_async_client": "the clients are built by AvengersChatModel",
    "stream_usage": "usage is always streamed, to report costs",
    "streaming": "set streaming=... on AvengersChatModel",
    "max_retries": "retries and fallbacks are AvengersChatModel's (max_retries=..., "
    "max_fallbacks=...)",
    "n": "one answer per call",
    "use_responses_api": "costs are read from Chat Completions answers",
    "use_previous_response_id": "costs are read from Chat Completions answers",
    "output_version": "set output_version=... on AvengersChatModel",
}
"""ChatOpenAI settings a per-model entry of ``model_settings`` may not change, and why."""
REFUSED_CLIENT_SETTINGS.update(
    dict.fromkeys(
        [
            "name",
            "cache",
            "verbose",
            "callbacks",
            "tags",
            "metadata",
            "custom_get_token_ids",
            "rate_limiter",
            "disable_streaming",
            "profile",
        ],
        "it belongs to the routed call: set it on AvengersChatModel",
    )
)


def _names(fields: Mapping[str, FieldInfo]) -> dict[str, str]:
    """Every accepted argument name (field names and aliases) -> its field name."""
    names: dict[str, str] = {}
    for field_name, info in fields.items():
        names[field_name] = field_name
        aliases: list[Any] = [info.alias]
        if isinstance(info.validation_alias, AliasChoices):
            aliases += info.validation_alias.choices
        else:
            aliases.append(info.validation_alias)
        names.update({alias: field_name for alias in aliases if isinstance(alias, str)})
    return names


def nearest(name: str, choices: Iterable[str]) -> str | None:
    """The known name closest to a misspelt one, if any is close."""
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown(where: str, name: str, choices: Iterable[str]) -> ValueError:
    guess = nearest(name, choices)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return ValueError(f"{where}: unknown argument {name!r}{hint}")


@functools.lru_cache(maxsize=1024)
def misspelt_option(name: str, options: tuple[str, ...]) -> str | None:
    """The option ``name`` most likely misspells (a close match that is not itself an option).

    Cached: every call's keywords pass through here, and difflib costs ~7 us a name.
    """
    if name in options:
        return None
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.8)
    return close[0] if close else None


def check_call_keywords(kwargs: Mapping[str, Any], options: tuple[str, ...], where: str) -> None:
    """Refuse a call keyword that misspells a routing option.

    Other keywords go to the provider's API as they are (as with ChatOpenAI), where a typo of
    ours would only fail as the SDK's ``TypeError``, or not at all.
    """
    for name in kwargs:
        if (guess := misspelt_option(name, options)) is not None:
            msg = f"{where}: unknown argument {name!r}; did you mean {guess!r}?"
            raise ValueError(msg)


def check_constructor_arguments(fields: Mapping[str, FieldInfo], data: Mapping[str, Any]) -> None:
    """Refuse arguments AvengersChatModel does not know, naming the nearest one.

    ``model``/``model_name`` get their own explanation: the model is chosen per call.
    """
    names = _names(fields)
    type_name = "AvengersChatModel"
    for name in data:
        if name in ONE_MODEL_ARGUMENTS:
            msg = (
                f"AvengersChatModel: {name}={data[name]!r} is not an option: every call is "
                "routed to one model of the router's pool. Restrict the pool with "
                "models=[...], pin one call with invoke(..., model=...) or bind(model=...), "
                "or pass a router fitted on other models (router=...)"
            )
            raise ValueError(msg)
        if name not in names:
            raise _unknown(type_name, name, names)


def check_max_cost(value: object, where: str = "max_cost_per_call") -> float | None:
    """None (no cap) or a finite number of USD > 0."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        msg = f"{where}: expected a number of USD > 0 or None, got {value!r}"
        raise ValueError(msg)
    return float(value)


def check_session_id(value: object, where: str = "session_id") -> str:
    """A conversation key: a non-empty string."""
    if not isinstance(value, str) or not value:
        msg = f"{where}: expected a non-empty string naming the conversation, got {value!r}"
        raise ValueError(msg)
    return value


def check_models(value: object, pool: Sequence[str], where: str = "models") -> list[str] | None:
    """None (the whole pool) or a non-empty list of pool model ids, duplicates dropped."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(m, str) for m in value):
        msg = f"{where}: expected a list of model ids from the pool {list(pool)}, got {value!r}"
        raise ValueError(msg)
    if not value:
        msg = f"{where}: empty list; choose among the pool {list(pool)}"
        raise ValueError(msg)
    unknown = [m for m in value if m not in pool]
    if unknown:
        msg = f"{where}: {unknown} not in the router's pool; choose among {list(pool)}"
        raise ValueError(msg)
    return list(dict.fromkeys(value))


def check_pinned_model(value: object, pool: Sequence[str]) -> str:
    """A pool model id (``invoke(..., model=...)`` pins one call to it)."""
    if not isinstance(value, str) or value not in pool:
        msg = f"model: {value!r} is not in the router's pool; choose among {list(pool)}"
        raise ValueError(msg)
    return value


class RoutingOptions(BaseModel):
    """Routing options set on a chat model, a binding, one call or an agent run.

    Frozen and closed (``extra="forbid"``): an unknown name is refused with the nearest known
    one. Checks that need the router (the pool, its cluster count) read them from the
    validation context; :meth:`checked` supplies it and turns pydantic's errors into one line.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float | None = None
    """Weight of accuracy against cost, in [0, 1]."""
    nearest_clusters: int | None = None
    """Nearest clusters routing reads, in [1, the router's cluster count]."""
    models: list[str] | None = None
    """Pool models routing may choose from."""
    max_cost_per_call: float | None = None
    """USD a call's expected cost may not exceed."""

    @field_validator("alpha", mode="before")
    @classmethod
    def _alpha(cls, value: object) -> float | None:
        return None if value is None else check_alpha(value)

    @field_validator("nearest_clusters", mode="before")
    @classmethod
    def _nearest_clusters(cls, value: object, info: ValidationInfo) -> int | None:
        return check_nearest_clusters(value, _context(info)["n_clusters"])

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, value: object, info: ValidationInfo) -> list[str] | None:
        return check_models(value, _context(info)["pool"])

    @field_validator("max_cost_per_call", mode="before")
    @classmethod
    def _max_cost(cls, value: object) -> float | None:
        return check_max_cost(value)

    @classmethod
    def checked(
        cls, values: Mapping[str, Any], *, pool: Sequence[str], n_clusters: int, where: str
    ) -> RoutingOptions:
        """The options in ``values``, checked against a router's pool and cluster count.

        Raises:
            ValueError: an unknown name (with the nearest known one) or a bad value, naming
                ``where`` and the option.
        """
        if not values:  # most calls give none: nothing to validate on the hot path
            return _NO_OPTIONS
        for name in values:
            if name not in ROUTING_OPTIONS:
                raise _unknown(where, name, ROUTING_OPTIONS)
        context = {"pool": tuple(pool), "n_clusters": n_clusters}
        try:
            return cls.model_validate(dict(values), context=context)
        except ValidationError as error:
            detail = error.errors()[0]
            cause = (detail.get("ctx") or {}).get("error")
            text = str(cause) if cause is not None else detail["msg"]
            msg = f"{where}: {text}"
            raise ValueError(msg) from None

    def given(self) -> dict[str, Any]:
        """The options that were set, by name."""
        return self.model_dump(exclude_unset=True)


ROUTING_OPTIONS: tuple[str, ...] = tuple(RoutingOptions.model_fields)
_NO_OPTIONS = RoutingOptions()
"""Names of the routing options (:class:`RoutingOptions`)."""


def _context(info: ValidationInfo) -> dict[str, Any]:
    if not isinstance(info.context, dict):
        msg = "RoutingOptions needs the router: use RoutingOptions.checked(..., pool=, n_clusters=)"
        raise TypeError(msg)
    return info.context


def check_routing_options(
    options: Mapping[str, Any], pool: Sequence[str], n_clusters: int, where: str
) -> dict[str, Any]:
    """The routing options given, checked through :class:`RoutingOptions`."""
    return RoutingOptions.checked(options, pool=pool, n_clusters=n_clusters, where=where).given()


def check_model_kwargs(value: object) -> None:
    """``model_kwargs`` as in ChatOpenAI: extra request parameters by name.

    A dict of dicts keyed by pool model ids is what ``model_settings`` takes; say so.
    """
    if value is None:
        return
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        msg = f"model_kwargs: expected a dict of extra request parameters, got {value!r}"
        raise ValueError(msg)
    per_model = [k for k, v in value.items() if "/" in k and isinstance(v, Mapping)]
    if per_model:
        msg = (
            f"model_kwargs: {per_model} look like model ids; model_kwargs holds extra request "
            "parameters for every model (as in ChatOpenAI). Per-model settings go in "
            "model_settings={model id: {setting: value}}"
        )
        raise ValueError(msg)


def check_top_p(value: object, where: str = "top_p") -> float | None:
    """``top_p`` as every LangChain chat model means it: nucleus sampling, in [0, 1].

    The number of nearest clusters routing reads was once called ``top_p`` here; an int above
    1 is refused with its new name.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"{where}: expected a number in [0, 1] (nucleus sampling), got {value!r}"
        raise ValueError(msg)
    if not (math.isfinite(value) and 0.0 <= float(value) <= 1.0):
        msg = (
            f"{where}: expected a number in [0, 1] (nucleus sampling, passed to the routed "
            f"model), got {value!r}; the number of nearest clusters routing reads is "
            "nearest_clusters"
        )
        raise ValueError(msg)
    return float(value)


def client_overrides(
    model_settings: Mapping[str, Any], pool: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per-model ChatOpenAI settings, keyed by ChatOpenAI's own field names.

    Sampling and request settings (``temperature``, ``max_tokens``, ``timeout``,
    ``reasoning_effort``, ``extra_body``...) override the top-level ones for that model;
    identity, connection and retry settings are refused, as are names ChatOpenAI does not
    know.
    """
    if not isinstance(model_settings, Mapping):
        msg = f"model_settings: expected {{model id: {{setting: value}}}}, got {model_settings!r}"
        raise ValueError(msg)
    unknown = sorted(set(model_settings) - set(pool))
    if unknown:
        msg = f"model_settings: model id(s) {unknown} are not in the router's pool {list(pool)}"
        raise ValueError(msg)
    names = _names(ChatOpenAI.model_fields)
    overrides: dict[str, dict[str, Any]] = {}
    for model, settings in model_settings.items():
        where = f"model_settings[{model!r}]"
        if not isinstance(settings, Mapping):
            msg = f"{where}: expected a dict of ChatOpenAI settings, got {settings!r}"
            raise ValueError(msg)
        overrides[model] = {}
        for name, value in settings.items():
            field = names.get(name)
            if field is None:
                allowed = (n for n, f in names.items() if f not in REFUSED_CLIENT_SETTINGS)
                raise _unknown(where, name, allowed)
            if field in REFUSED_CLIENT_SETTINGS:
                msg = f"{where}: {name!r} cannot be set per model: {REFUSED_CLIENT_SETTINGS[field]}"
                raise ValueError(msg)
            overrides[model][field] = value
    return overrides
