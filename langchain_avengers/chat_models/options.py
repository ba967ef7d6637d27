"""Strict checks of AvengersChatModel's arguments: constructor, ``bind`` and per-call options.

Every refusal is a ``ValueError`` naming the argument, what was expected and, for a misspelt
name, the nearest known one.
"""

from __future__ import annotations

import difflib
import functools
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_openai import ChatOpenAI
from pydantic import AliasChoices
from pydantic.fields import FieldInfo

__all__ = [
    "check_alpha",
    "check_constructor_arguments",
    "check_max_cost",
    "check_models",
    "check_nearest_clusters",
    "check_pinned_model",
    "check_routing_options",
    "check_session_id",
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
"""ChatOpenAI settings a per-model entry of ``model_kwargs`` may not change, and why."""
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


def check_alpha(value: object, where: str = "alpha") -> float:
    """A number in [0, 1]: the weight of accuracy against cost."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = (
            f"{where}: expected a number in [0, 1] (1 buys the best expected answer, 0 the "
            f"cheapest), got {value!r}"
        )
        raise ValueError(msg)
    if not (math.isfinite(value) and 0.0 <= float(value) <= 1.0):
        msg = f"{where} must be in [0, 1], got {value!r}"
        raise ValueError(msg)
    return float(value)


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


def check_nearest_clusters(
    value: object, n_clusters: int, where: str = "nearest_clusters"
) -> int | None:
    """None (the router's own setting) or an int in [1, n_clusters]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"{where}: expected an int in [1, {n_clusters}] or None, got {value!r}"
        raise ValueError(msg)
    if not 1 <= int(value) <= n_clusters:
        msg = f"{where}: must be in [1, {n_clusters}] (the router's clusters), got {value!r}"
        raise ValueError(msg)
    return int(value)


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


ROUTING_OPTIONS = ("alpha", "nearest_clusters", "models", "max_cost_per_call")
"""Routing options a model copy may carry (``bind``, ``with_routing``, the constructor)."""


def check_routing_options(
    options: Mapping[str, Any], pool: Sequence[str], n_clusters: int, where: str
) -> dict[str, Any]:
    """Routing options checked (those present: :data:`ROUTING_OPTIONS`); others refused."""
    for name in options:
        if name not in ROUTING_OPTIONS:
            raise _unknown(where, name, ROUTING_OPTIONS)
    checked = dict(options)
    if "alpha" in options:
        checked["alpha"] = check_alpha(options["alpha"])
    if "nearest_clusters" in options:
        checked["nearest_clusters"] = check_nearest_clusters(
            options["nearest_clusters"], n_clusters
        )
    if "models" in options:
        checked["models"] = check_models(options["models"], pool)
    if "max_cost_per_call" in options:
        checked["max_cost_per_call"] = check_max_cost(options["max_cost_per_call"])
    return checked


def client_overrides(
    model_kwargs: Mapping[str, Any], pool: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per-model ChatOpenAI settings, keyed by ChatOpenAI's own field names.

    Sampling and request settings (``temperature``, ``max_tokens``, ``timeout``,
    ``reasoning_effort``, ``extra_body``...) override the top-level ones for that model;
    identity, connection and retry settings are refused, as are names ChatOpenAI does not
    know.
    """
    if not isinstance(model_kwargs, Mapping):
        msg = f"model_kwargs: expected {{model id: {{setting: value}}}}, got {model_kwargs!r}"
        raise ValueError(msg)
    unknown = sorted(set(model_kwargs) - set(pool))
    if unknown:
        msg = f"model_kwargs: model id(s) {unknown} are not in the router's pool {list(pool)}"
        raise ValueError(msg)
    names = _names(ChatOpenAI.model_fields)
    overrides: dict[str, dict[str, Any]] = {}
    for model, settings in model_kwargs.items():
        where = f"model_kwargs[{model!r}]"
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
