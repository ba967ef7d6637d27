"""Test your chains and agents against an offline OpenRouter: no key, no network, no cost.

:func:`offline_openrouter` starts a local OpenRouter-compatible server on a free loopback port
(chat completions with tools, JSON modes and streaming, usage with ``cost`` in USD, the
``/models`` list) whose answers are canned but deterministic; routing, fallbacks, tool calls,
structured output, token counts and costs run for real against it. :class:`Faults` makes a model
fail, hang, stream a broken body or misreport its cost, so error paths can be tested too::

    from langchain_avengers import AvengersChatModel
    from langchain_avengers.testing import offline_openrouter

    with offline_openrouter() as server:
        llm = AvengersChatModel(base_url=server.base_url, api_key=server.api_key)
        llm.invoke("What is the capital of Australia?")
        server.faults.fail_models["google/gemini-2.5-flash"] = 429
        server.models_called()

In pytest, the ``offline_openrouter`` fixture (registered by this package's ``pytest11`` entry
point) yields the same handle, reset before each test. By hand:
``python -m langchain_avengers.testing --port 8765``.

:func:`offline_langsmith` is an offline LangSmith for the ``langsmith`` client: it keeps the
runs it is sent and answers projects, datasets, examples, feedback and run queries, so tracing,
feedback and ``avengers harvest`` can be tried and tested without an account.

The servers are stdlib-only and import nothing else of this package; nothing in the package
imports them.
"""

from langchain_avengers.testing._answer_key import AnswerSpec, load_answer_key
from langchain_avengers.testing._faults import Faults
from langchain_avengers.testing._langsmith import LangSmithStandIn as OfflineLangSmith
from langchain_avengers.testing._langsmith import offline_langsmith
from langchain_avengers.testing._models import MODELS
from langchain_avengers.testing._server import (
    OFFLINE_API_KEY,
    OfflineOpenRouter,
    offline_openrouter,
)

OFFLINE_MODELS: tuple[str, ...] = tuple(MODELS)
"""The model ids the offline server answers for (the bundled router's pool among them)."""

__all__ = [
    "OFFLINE_API_KEY",
    "OFFLINE_MODELS",
    "AnswerSpec",
    "Faults",
    "OfflineLangSmith",
    "OfflineOpenRouter",
    "load_answer_key",
    "offline_langsmith",
    "offline_openrouter",
]
