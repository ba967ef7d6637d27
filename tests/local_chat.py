"""An ``AvengersChatModel`` pointed at the local OpenRouter-compatible server, and the tool and
schema the chat tests bind to it (the same as LangChain's standard tests use).

Shared by the integration tests that call the server over real HTTP; test modules import it by
name (``tests/`` is on ``pythonpath``).
"""

from __future__ import annotations

import socket
from typing import Any

from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_avengers import AvengersChatModel
from langchain_avengers.testing import OfflineOpenRouter

SECRET = "sk-or-v1-test-secret-never-logged-0123456789"
"""The API key of :func:`make_llm`'s models: distinctive, so tests can check it never leaks."""


def closed_port() -> int:
    """A loopback port nothing listens on (bound by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_llm(server: OfflineOpenRouter, **kwargs: Any) -> AvengersChatModel:
    """A chat model calling ``server`` with :data:`SECRET`, no retries and a 5 s timeout;
    ``kwargs`` add to or override those."""
    params: dict[str, Any] = {
        "base_url": server.base_url,
        "api_key": SECRET,
        "max_retries": 0,
        "timeout": 5,
    }
    return AvengersChatModel(**{**params, **kwargs})


@tool
def magic_function(input: int) -> int:
    """Apply a magic function to an input."""
    return input + 2


class Joke(BaseModel):
    """A joke."""

    setup: str
    punchline: str
