"""Warnings that point at the user's line, however deep in the stack they are raised."""

from __future__ import annotations

import sys

_LIBRARIES = frozenset(
    {"langchain_avengers", "pydantic", "langchain_core", "langchain", "langgraph", "sklearn"}
)
"""Top-level packages a warning looks past: ours, and those that call us on a user's behalf
(pydantic builds the chat model, LangChain and LangGraph run it)."""


def user_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside :data:`_LIBRARIES`, for the caller's warn.

    ``warnings.warn(..., stacklevel=user_stacklevel())`` reports the user's line rather than a
    line of ours or of pydantic (Python 3.12's ``skip_file_prefixes``, for 3.10 and 3.11).
    """
    frame = sys._getframe(1)  # the function about to warn: stacklevel 1
    level = 1
    while frame is not None and _package(frame.f_globals.get("__name__")) in _LIBRARIES:
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _package(module: object) -> str:
    return module.split(".", 1)[0] if isinstance(module, str) else ""
