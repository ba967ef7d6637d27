"""Sum the tokens and dollars of many calls (a chain, an agent, a batch).

LangChain core's ``get_usage_metadata_callback()`` adds usage with
``langchain_core.messages.ai.add_usage``, which only adds ints: the float cost fields
(``input_cost``, ``output_cost``, ``total_cost``) that :class:`AvengersChatModel` puts in
``usage_metadata`` make it raise ``ValueError: Unknown value types: [float...]`` from the
second answer of the same model on (langchain-ai/langchain#36015, langchain-core 1.7.2 to
1.8.2); the callback manager logs the error and the sum silently stops growing. The same
function here is a drop-in replacement whose handler adds floats too.

Example:
    .. code-block:: python

        from langchain_avengers.callbacks import get_usage_metadata_callback

        with get_usage_metadata_callback() as usage:
            agent.invoke({"messages": [("user", "...")]})
        usage.total_cost  # USD over every model call of the agent
        usage.usage_metadata  # per model: tokens and costs
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_avengers.chat_models.costs import add_usage

__all__ = ["UsageCostCallbackHandler", "add_usage", "get_usage_metadata_callback"]


class UsageCostCallbackHandler(UsageMetadataCallbackHandler):
    """Core's :class:`UsageMetadataCallbackHandler`, summing the cost fields as well.

    ``usage_metadata`` maps each model name to its summed usage (tokens, and
    ``input_cost``/``output_cost``/``total_cost`` in USD where the answers carried them).
    """

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Add the answer's usage to its model's running total."""
        generation = response.generations[0][0] if response.generations else None
        if not isinstance(generation, ChatGeneration):
            return
        message = generation.message
        if not isinstance(message, AIMessage) or not message.usage_metadata:
            return
        model = message.response_metadata.get("model_name")
        if not model:
            return
        with self._lock:
            self.usage_metadata[model] = add_usage(
                self.usage_metadata.get(model), message.usage_metadata
            )

    @property
    def total_cost(self) -> float:
        """USD over every answer that reported a cost."""
        with self._lock:
            costs = [u.get("total_cost", 0.0) for u in self.usage_metadata.values()]
        return float(sum(c for c in costs if isinstance(c, (int, float))))

    @property
    def total_tokens(self) -> int:
        """Tokens over every answer."""
        with self._lock:
            return sum(u.get("total_tokens", 0) for u in self.usage_metadata.values())


_HOOKS: list[ContextVar[UsageCostCallbackHandler | None]] = []
"""One context variable per nesting depth, each registered once with LangChain's configure
hooks (core registers a new one on every call, so its list grows for the process's life)."""
_HOOKS_LOCK = threading.Lock()


def _free_hook() -> ContextVar[UsageCostCallbackHandler | None]:
    """A registered context variable no enclosing ``with`` block uses in this context."""
    with _HOOKS_LOCK:
        for var in _HOOKS:
            if var.get() is None:
                return var
        var = ContextVar(f"avengers_usage_callback_{len(_HOOKS)}", default=None)
        register_configure_hook(var, inheritable=True)
        _HOOKS.append(var)
        return var


@contextmanager
def get_usage_metadata_callback() -> Iterator[UsageCostCallbackHandler]:
    """Sum the usage and cost of every chat-model call made inside the ``with`` block.

    A drop-in for ``langchain_core.callbacks.get_usage_metadata_callback`` that also sums
    the float cost fields; nested blocks each see the calls made inside them.

    Yields:
        The handler; read ``usage_metadata``, ``total_cost`` and ``total_tokens``.
    """
    var = _free_hook()
    handler = UsageCostCallbackHandler()
    token = var.set(handler)
    try:
        yield handler
    finally:
        var.reset(token)
