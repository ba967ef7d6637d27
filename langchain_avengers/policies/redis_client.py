"""The Redis client of the shared stores, and their fallback to in-process state when it fails.

Part of :mod:`langchain_avengers.policies.redis_store`; ``redis`` is imported only when a store
is built.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_RETRY_AFTER_S", "DEFAULT_TIMEOUT_S", "Fallback", "connect", "redis_errors"]

logger = logging.getLogger("langchain_avengers.policies.redis_store")
"""The shared stores warn under one logger name, the module users import them from."""

DEFAULT_TIMEOUT_S = 0.5
"""Most seconds one Redis operation may take to connect, and again to answer."""
DEFAULT_RETRY_AFTER_S = 5.0
"""Seconds between attempts to use Redis again after it failed."""


def _redis() -> Any:
    """The ``redis`` package, or an ImportError that says how to install it."""
    try:
        import redis
    except ImportError as error:
        msg = 'Redis stores need the redis package: pip install "langchain-avengers[redis]"'
        raise ImportError(msg) from error
    return redis


def connect(url: str, timeout_s: float) -> Any:
    """A Redis client for ``url`` that fails within ``timeout_s`` and does not retry."""
    redis = _redis()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if not (isinstance(timeout_s, (int, float)) and 0 < timeout_s < math.inf):
        msg = f"timeout_s: expected seconds > 0, got {timeout_s!r}"
        raise ValueError(msg)
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        decode_responses=True,
    )


class Fallback:
    """When to use Redis and when this process's state: one warning per outage."""

    def __init__(self, what: str, where: str, retry_after_s: float, clock: Callable[[], float]):
        self.what, self.where = what, where
        self.retry_after_s = retry_after_s
        self.clock = clock
        self.down_since: float | None = None
        self.reason: str | None = None
        self._lock = threading.Lock()
        self._last_try = 0.0

    def should_try(self) -> bool:
        """Whether to use Redis now: it is up, or the retry interval passed (one caller)."""
        with self._lock:
            if self.down_since is None:
                return True
            now = self.clock()
            if now - self._last_try >= self.retry_after_s:
                self._last_try = now
                return True
            return False

    def failed(self, error: Exception) -> None:
        """Redis failed: switch to this process's state, warning once per outage."""
        with self._lock:
            first = self.down_since is None
            self._last_try = self.clock()
            if first:
                self.down_since = self._last_try
            self.reason = (
                f"{self.where} unreachable ({type(error).__name__}: {error}); "
                f"{self.what} kept in this process"
            )
        if first:
            logger.warning("%s; retrying every %gs, calls go on", self.reason, self.retry_after_s)

    def succeeded(self) -> None:
        """Redis answered: use it again."""
        with self._lock:
            back = self.down_since is not None
            self.down_since, self.reason = None, None
        if back:
            logger.warning("%s reachable again; %s shared again", self.where, self.what)


def redis_errors() -> tuple[type[Exception], ...]:
    """What a failing Redis raises."""
    redis = _redis()
    return (redis.exceptions.RedisError, OSError)


def where(client: Any) -> str:
    """``Redis at host:port``, for messages."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    host, port = kwargs.get("host"), kwargs.get("port")
    return f"Redis at {host}:{port}" if host else "Redis"
