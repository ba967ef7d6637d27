"""The LangSmith stand-in as the tests use it: the package's offline LangSmith, zstd on.

``langchain_avengers.testing.offline_langsmith`` is stdlib-only; the tests hand it
``zstandard``'s decompressor so the real ``langsmith.Client`` compresses its multipart bodies
as it does for a current LangSmith, and what it posts is checked as sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import zstandard

from langchain_avengers.testing._langsmith import LangSmithStandIn, Received, offline_langsmith

__all__ = ["LangSmithStandIn", "Received", "serve"]


def decompress(raw: bytes) -> bytes:
    """One zstd body, decoded (the client sends frames without a content size)."""
    return zstandard.ZstdDecompressor().decompressobj().decompress(raw)


@contextmanager
def serve() -> Iterator[LangSmithStandIn]:
    """Run the stand-in, with zstd, in a background thread for the ``with`` block."""
    with offline_langsmith(decompress=decompress) as state:
        yield state
