"""The pool of the agent middleware: an AvengersChatModel, or any chat models by router id.

Builds the middleware's ``RoutingPath`` (the chat model's own,
or one over the mapping's models with their profiles) and checks the middleware's options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from langchain_avengers.catalog.base import load_catalog
from langchain_avengers.chat_models.base import AvengersChatModel
from langchain_avengers.chat_models.options import ROUTING_OPTIONS, check_routing_options
from langchain_avengers.chat_models.routing import (
    RoutingPath,
)
from langchain_avengers.policies.pacing import check_pacer
from langchain_avengers.policies.pins import (
    DEFAULT_PIN_TTL_S,
    InMemoryPinStore,
    Pinning,
    check_pin_store,
    check_pin_ttl,
)
from langchain_avengers.policies.routing_text import ROUTING_TEXT_MODES
from langchain_avengers.routing.bundled import load_router
from langchain_avengers.routing.router import ClusterRouter

__all__ = ["path_options", "pinning_for", "resolve_pool"]


def resolve_pool(
    pool: object,
    router: ClusterRouter | str | Path | None,
    profiles: Mapping[str, Mapping[str, Any]] | None,
) -> tuple[AvengersChatModel | None, dict[str, BaseChatModel], RoutingPath]:
    """The chat model (if the pool is one), the pool's models by id, and its routing path."""
    if isinstance(pool, AvengersChatModel):
        if router is not None or profiles is not None:
            msg = (
                "AvengersMiddleware: router= and profiles= are for a mapping pool; an "
                "AvengersChatModel brings its own (set them on the chat model)"
            )
            raise TypeError(msg)
        return pool, {}, dataclasses.replace(pool._routing_path(), pinning=None)
    if not isinstance(pool, Mapping) or not pool:
        msg = (
            "pool: expected an AvengersChatModel or a non-empty mapping of model id to "
            f"LangChain chat model, got {type(pool).__name__}"
        )
        raise TypeError(msg)
    for model_id, model in pool.items():
        if not isinstance(model, BaseChatModel):
            msg = f"pool[{model_id!r}]: expected a LangChain chat model, got {type(model).__name__}"
            raise TypeError(msg)
    if router is None:
        msg = "router: a mapping pool needs the fitted router (or its path) that knows its ids"
        raise ValueError(msg)
    fitted = load_router(router)
    unknown = [m for m in pool if m not in fitted.models_]
    if unknown:
        msg = f"pool: model id(s) {unknown} are not in the router's pool {fitted.models_}"
        raise ValueError(msg)
    models = {str(k): v for k, v in pool.items()}
    path = RoutingPath(
        router=fitted,
        profiles=mapping_profiles(models, profiles or {}),
        pool=tuple(models),
        max_retries=0,
        profile_hint="pass AvengersMiddleware(profiles={...})",
    )
    return None, models, path


def mapping_profiles(
    models: Mapping[str, BaseChatModel], given: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each model's profile: the user's entry over the model's own over the catalog's."""
    unknown = sorted(set(given) - set(models))
    if unknown:
        msg = f"profiles: model id(s) {unknown} are not in the pool {sorted(models)}"
        raise ValueError(msg)
    catalog = load_catalog()
    profiles: dict[str, dict[str, Any]] = {}
    for model_id, model in models.items():
        layers = [
            catalog.get(model_id),
            model.profile,
            given.get(model_id),
        ]
        merged: dict[str, Any] = {}
        for layer in layers:
            merged.update(layer or {})
        if merged:
            profiles[model_id] = merged
    return profiles


def path_options(base: RoutingPath, **given: Any) -> dict[str, Any]:
    """The options given to the middleware (``None``: not given), checked, as path fields."""
    values = {k: v for k, v in given.items() if v is not None}
    routing: dict[str, Any] = {k: values.pop(k) for k in ROUTING_OPTIONS if k in values}
    where = "AvengersMiddleware"
    checked = check_routing_options(routing, base.pool, base.router.n_clusters_, where)
    if "models" in checked:
        checked["models"] = tuple(checked["models"])
    if "alpha" in checked:
        checked["alpha_is_bound"] = True
    if "pacer" in values:
        values["pacer"] = check_pacer(values["pacer"])
    if values.get("routing_text", "latest_human") not in ROUTING_TEXT_MODES:
        msg = f"routing_text: expected one of {ROUTING_TEXT_MODES}, got {values['routing_text']!r}"
        raise ValueError(msg)
    for name, least in (("routing_text_chars", 1), ("max_fallbacks", 0), ("max_retries", 0)):
        value = values.get(name, least)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            msg = f"{name}: expected an int >= {least}, got {value!r}"
            raise ValueError(msg)
    return {**values, **checked}


def pinning_for(
    llm: AvengersChatModel | None,
    enabled: bool | None,
    ttl: float | None,
    store: Any,
) -> Pinning | None:
    """Conversation pins: the chat model's settings and store unless given here."""
    if enabled is None:
        enabled = bool(llm is not None and llm.pin_conversations)
    if not enabled:
        return None
    pin_store = check_pin_store(store)
    if pin_store is None:
        shared = llm._pinning if llm is not None else None
        pin_store = shared.store if shared is not None else InMemoryPinStore()
    default_ttl = llm.pin_ttl if llm is not None else DEFAULT_PIN_TTL_S
    return Pinning(pin_store, check_pin_ttl(ttl if ttl is not None else default_ttl))


def refuse_chat_model_options(pool: object, given: Mapping[str, Any]) -> None:
    """Refuse options an :class:`AvengersChatModel` pool already holds (set them there).

    Raises:
        ValueError: naming the options and where they belong.
    """
    if not isinstance(pool, AvengersChatModel) or not given:
        return
    names = ", ".join(sorted(given))
    msg = (
        f"AvengersMiddleware: {names} come from the chat model; set them on it "
        "(AvengersChatModel(...=...) or llm.with_routing(...)) and give the middleware only "
        "max_run_cost and budget_exit_behavior"
    )
    raise ValueError(msg)
