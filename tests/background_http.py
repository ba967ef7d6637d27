"""Serve a stdlib HTTP server from a daemon thread for a ``with`` block (the test servers' own
``serve()`` functions build theirs and run it here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import BaseServer


@contextmanager
def serving(httpd: BaseServer, name: str | None = None) -> Iterator[None]:
    """Run ``httpd.serve_forever`` in a thread; shut it down and close it on exit."""
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
