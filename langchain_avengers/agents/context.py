"""An agent run's routing options from ``runtime.context``, checked, and its conversation key."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.runnables.config import ensure_config

from langchain_avengers._utils.warnings import user_stacklevel
from langchain_avengers.chat_models.options import (
    ROUTING_OPTIONS,
    RoutingOptions,
    check_max_cost,
    check_session_id,
    misspelt_option,
)

if TYPE_CHECKING:
    from langchain.agents.middleware.types import ModelRequest

CONTEXT_KEYS = ("alpha", "max_cost_per_call", "max_run_cost", "session_id")
"""What the middleware reads from ``runtime.context`` (a dict or an object with attributes)."""


def _context_options(context: object) -> dict[str, Any]:
    """The routing options a run's context gives (:data:`CONTEXT_KEYS`), checked.

    Other fields of the context are the application's own and left alone.
    """
    read = context.get if isinstance(context, Mapping) else lambda n: getattr(context, n, None)
    _warn_if_misspelt(context)
    found = {name: value for name in CONTEXT_KEYS if (value := read(name)) is not None}
    where = "runtime.context[{!r}]".format
    routing = {name: found[name] for name in ROUTING_OPTIONS if name in found}
    found.update(
        RoutingOptions.checked(routing, pool=(), n_clusters=0, where="runtime.context").given()
    )
    if "max_run_cost" in found:
        found["max_run_cost"] = check_max_cost(found["max_run_cost"], where("max_run_cost"))
    if "session_id" in found:
        found["session_id"] = check_session_id(found["session_id"], where("session_id"))
    return found


def _warn_if_misspelt(context: object) -> None:
    """Warn about a context field that looks like a misspelt routing option (it is ignored)."""
    names = context.keys() if isinstance(context, Mapping) else getattr(context, "__dict__", {})
    for name in names:
        if isinstance(name, str) and (guess := misspelt_option(name, CONTEXT_KEYS)):
            warnings.warn(
                f"runtime.context[{name!r}] is not read by AvengersMiddleware; did you mean "
                f"{guess!r}? (context fields other than {', '.join(CONTEXT_KEYS)} are ignored)",
                UserWarning,
                stacklevel=user_stacklevel(),
            )


def _thread_id(request: ModelRequest[Any]) -> str | None:
    """The conversation's LangGraph thread id, from the runtime or the run's config."""
    info = getattr(request.runtime, "execution_info", None) if request.runtime else None
    thread = getattr(info, "thread_id", None)
    if thread is None:
        thread = (ensure_config().get("configurable") or {}).get("thread_id")
    return None if thread is None else str(thread)
