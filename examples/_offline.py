"""Shared start-up for the examples: the router-backed chat model, live or offline.

Live: ``AvengersChatModel`` talks to OpenRouter with ``OPENROUTER_API_KEY`` from the environment.
Offline (``--offline``): the package's offline OpenRouter (``langchain_avengers.testing``) is
started on a free loopback port and the model points at it. Its answers are canned, but routing,
tool calls, structured output, usage and cost are real.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_avengers import AvengersChatModel
from langchain_avengers.testing import offline_openrouter


def parse_args(description: str | None) -> argparse.Namespace:
    """The command line every example shares: just ``--offline``."""
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use the offline OpenRouter of langchain_avengers.testing instead of OpenRouter",
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
    with offline_openrouter() as server:
        print(f"[offline] offline OpenRouter at {server.base_url}\n")
        yield AvengersChatModel(base_url=server.base_url, api_key=server.api_key, **kwargs)
