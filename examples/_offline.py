"""Shared start-up for the examples: the router-backed chat model, live or offline.

Live: ``AvengersChatModel`` talks to OpenRouter with ``OPENROUTER_API_KEY`` from the environment.
Offline (``--offline``): the repository's local OpenRouter-compatible test server
(``tests/openrouter_server.py``) is started on a free loopback port and the model points at it.
Its answers are canned, but routing, tool calls, structured output, usage and cost are real.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_avengers import AvengersChatModel

TESTS_DIR = Path(__file__).resolve().parents[1] / "tests"


def parse_args(description: str | None) -> argparse.Namespace:
    """The command line every example shares: just ``--offline``."""
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use the local OpenRouter-compatible test server instead of OpenRouter",
    )
    return parser.parse_args()


@contextmanager
def chat_model(offline: bool, **kwargs: Any) -> Iterator[AvengersChatModel]:
    """An ``AvengersChatModel`` (``kwargs`` go to its constructor), live or offline."""
    if not offline:
        if not os.environ.get("OPENROUTER_API_KEY"):
            sys.exit("OPENROUTER_API_KEY is not set: export it, or run with --offline")
        yield AvengersChatModel(**kwargs)  # the key (and OPENROUTER_BASE_URL) from the env
        return
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    from openrouter_server import serve

    with serve() as server:
        print(f"[offline] local OpenRouter-compatible server at {server.base_url}\n")
        yield AvengersChatModel(base_url=server.base_url, api_key="offline-demo", **kwargs)
