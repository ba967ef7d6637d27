"""Serve a stdlib HTTP server from a daemon thread for the length of a ``with`` block."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import BaseServer


@contextmanager
def serving(httpd: BaseServer, name: str | None = None) -> Iterator[None]:
    """Run ``httpd.serve_forever`` in a daemon thread; shut it down and close it on exit.

    Args:
        httpd: A bound server (its socket is already listening).
        name: The thread's name, shown in thread dumps.

    Yields:
        Nothing; the server answers until the block ends.
    """
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
