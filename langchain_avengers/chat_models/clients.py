"""The chat model's pool: one OpenRouter client and one resolved profile per model."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.language_models import ModelProfile
from pydantic import SecretStr

from langchain_avengers._utils.warnings import user_stacklevel
from langchain_avengers.catalog.base import OpenRouterProfile, load_catalog
from langchain_avengers.openrouter.chat import OpenRouterChatOpenAI


def new_client(
    model: str,
    overrides: Mapping[str, Any],
    *,
    base_url: str,
    api_key: SecretStr | None,
    sampling: Mapping[str, Any],
) -> OpenRouterChatOpenAI:
    """One model's client; retries are the router's own, so the client never retries.

    Args:
        model: The pool model id.
        overrides: That model's own ChatOpenAI settings (``model_settings[model]``).
        base_url: OpenRouter's (or a compatible server's) API base URL.
        api_key: The OpenRouter key.
        sampling: ChatOpenAI settings shared by every model, by ChatOpenAI field name
            (``temperature``, ``top_p``, ``request_timeout``...); ``None`` values are left
            out.
    """
    settings: dict[str, Any] = {
        "model_name": model,
        "openai_api_base": base_url,
        "openai_api_key": api_key,
        "openai_organization": None,  # never forward an OpenAI org id to OpenRouter
        "stream_usage": True,
        "max_retries": 0,
        "cache": False,  # the routed call is cached (or not) once, by the chat model
        **{name: value for name, value in sampling.items() if value is not None},
    }
    return OpenRouterChatOpenAI(**{**settings, **overrides})


SHARED_CLIENT_SETTINGS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "reasoning_effort": "reasoning_effort",
    "max_tokens": "max_tokens",
    "timeout": "request_timeout",
    "model_kwargs": "model_kwargs",
}
"""AvengersChatModel fields passed to every model's client -> ChatOpenAI's field names."""
_LIMITS = ("max_input_tokens", "max_output_tokens")


def pool_profile(profiles: Iterable[Mapping[str, Any]]) -> ModelProfile:
    """What the pool can do as a whole: every capability some model has, the largest limits.

    LangChain reads a chat model's ``profile`` to decide, for example, whether to ask for
    structured output natively or when to summarise a conversation. Routing still enforces
    each model's own profile per call (a call needing tools goes only to tool-capable models).
    """
    merged: dict[str, Any] = {}
    for profile in profiles:
        for name, value in profile.items():
            if name not in ModelProfile.__annotations__:
                continue  # prices and other OpenRouter extras
            if name in _LIMITS and isinstance(value, int):
                merged[name] = max(value, merged.get(name, 0))
            elif isinstance(value, bool):
                merged[name] = merged.get(name, False) or value
    return ModelProfile(**merged)  # type: ignore[typeddict-item]


def resolve_profiles(
    pool: Sequence[str], given: Mapping[str, OpenRouterProfile]
) -> dict[str, OpenRouterProfile]:
    """Each pool model's profile: the user's entry over the catalog's; warn on unknowns.

    The warning points at the user's line that built the chat model.
    """
    catalog = load_catalog()
    profiles: dict[str, Any] = {}
    for model in pool:
        known = catalog.get(model)
        entry = given.get(model)
        if known is not None or entry is not None:
            profiles[model] = {**(known or {}), **(entry or {})}
    unknown = [m for m in pool if m not in profiles]
    if unknown:
        hints = "; ".join(
            f"{m} (nearest known: {', '.join(catalog.nearest(m)) or 'none'})" for m in unknown
        )
        warnings.warn(
            f"no profile for pool model(s) {hints}: they serve plain text calls only (no "
            "tool calls, structured output or media inputs) and have no list prices. "
            "Check the ids, run `avengers catalog refresh`, or pass profiles={...}. "
            f"Catalog: {catalog.describe()}",
            stacklevel=user_stacklevel(),
        )
    return profiles
