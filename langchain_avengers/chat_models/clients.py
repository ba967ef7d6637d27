"""The chat model's pool: one OpenRouter client and one resolved profile per model."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

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
    temperature: float | None,
    max_tokens: int | None,
    timeout: float | None,
) -> OpenRouterChatOpenAI:
    """One model's client; retries are the router's own, so the client never retries."""
    settings: dict[str, Any] = {
        "model_name": model,
        "openai_api_base": base_url,
        "openai_api_key": api_key,
        "openai_organization": None,  # never forward an OpenAI org id to OpenRouter
        "stream_usage": True,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "request_timeout": timeout,
        "max_retries": 0,
    }
    return OpenRouterChatOpenAI(**{**settings, **overrides})


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
