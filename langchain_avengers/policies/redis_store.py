"""Pins and spend pacing shared by worker processes through a Redis server.

Why Redis: deployments with several workers (uvicorn, LangGraph servers) usually run one
already, and it has the two atomic operations this needs, with one round trip each: a
conditional write (a Lua script; ``SET NX`` for a first pin) and a read-modify-write of the
pacer's ledger (a Lua script, which runs alone on the server). LangGraph's ``PostgresStore``
has neither through its ``BaseStore`` API (its ``put`` always overwrites).

- :class:`RedisPinStore`: a conversation's pin is one key (``prefix + conversation id``) holding
  the pin as JSON, expiring with the pin; :meth:`~RedisPinStore.compare_and_set` is one Lua
  script, so concurrent first calls of a conversation in any worker agree on one model.
- :class:`RedisPacerState`: a ``SpendPacer`` ledger in one hash; each recorded cost is one Lua
  script that applies the step of :func:`~langchain_avengers.policies.ledger.record_step` on
  the server.

**When the server is down.** No call waits on Redis longer than ``timeout_s`` (default 0.5 s
to connect, 0.5 s to answer; redis-py's own retries are off). An operation that fails logs one
warning and switches the store to this process's own state: pins in an
:class:`~langchain_avengers.policies.pins.InMemoryPinStore`, the pacer's ledger from its last
view; the answer's metadata says so (``shared_state_down``). Every ``retry_after_s`` (default
5 s) one operation tries Redis again; once it answers the store uses it again (pins set
meanwhile stay in this process; the pacer replays the costs it counted alone, so the shared
total misses none of them).

Needs ``pip install "langchain-avengers[redis]"``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from langchain_avengers.policies.pins import InMemoryPinStore, Pin
from langchain_avengers.policies.redis_client import (
    DEFAULT_RETRY_AFTER_S,
    DEFAULT_TIMEOUT_S,
    Fallback,
    connect,
    redis_errors,
    where,
)
from langchain_avengers.policies.redis_pacer import RedisPacerState

__all__ = ["DEFAULT_RETRY_AFTER_S", "DEFAULT_TIMEOUT_S", "RedisPacerState", "RedisPinStore"]

T = TypeVar("T")


# ---------------------------------------------------------------------- pins

_CLAIM_PIN = """
local current = redis.call('GET', KEYS[1])
local model = false
if current then
  local ok, pin = pcall(cjson.decode, current)
  if ok and type(pin) == 'table' and type(pin.model) == 'string' and pin.model ~= ''
      and type(pin.expires_at) == 'number' and pin.expires_at > tonumber(ARGV[3]) then
    model = pin.model
  end
end
if (model == false and ARGV[2] == '') or (model ~= false and model == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
  return ARGV[1]
end
if model == false then return false end
return current
"""
"""KEYS: the pin's key. ARGV: the new pin (JSON), the expected model ('' for none), now,
the key's TTL in ms. Returns the live pin after the step (JSON) or nil."""


class RedisPinStore:
    """Conversation pins on a Redis server, shared by every worker that uses it.

    :meth:`compare_and_set` is one Lua script on the server, so it is atomic across threads,
    processes and machines: of concurrent first calls of a conversation one pins it and the
    others follow that pin. Each key expires with its pin (``PX``), so idle conversations
    leave nothing behind.

    Args:
        url: ``redis://host:port/db`` (ignored when ``client`` is given).
        client: A ``redis.Redis`` to use instead (its own timeouts then apply).
        prefix: Prepended to conversation ids to make keys.
        timeout_s: Most seconds to connect, and to wait for an answer.
        retry_after_s: Seconds between tries of Redis while it is down.
        clock: Seconds on a monotonic clock, for ``retry_after_s``.

    Raises:
        ImportError: the ``redis`` package is not installed.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        client: Any = None,
        prefix: str = "langchain_avengers:pin:",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client if client is not None else connect(url, timeout_s)
        self.prefix = prefix
        self.local = InMemoryPinStore()
        """Pins kept while Redis is down."""
        self._fallback = Fallback("conversation pins", where(self.client), retry_after_s, clock)
        self._errors = redis_errors()
        self._claim = self.client.register_script(_CLAIM_PIN)

    def __repr__(self) -> str:
        return f"RedisPinStore({self._fallback.where}, prefix={self.prefix!r})"

    def fallback_reason(self) -> str | None:
        """Why pins are kept in this process for now, or ``None`` while Redis serves them."""
        return self._fallback.reason

    def get(self, key: str) -> Pin | None:
        """The stored pin of ``key``, if any."""

        def read() -> Pin | None:
            value = self.client.get(self.prefix + key)
            return None if value is None else Pin.from_json(json.loads(value))

        return self._shared(read, lambda: self.local.get(key))

    def put(self, key: str, pin: Pin) -> None:
        """Store the pin of ``key`` (expiring with it)."""

        def write() -> None:
            self.client.set(self.prefix + key, _pin_text(pin), px=_ttl_ms(pin, time.time()))

        self._shared(write, lambda: self.local.put(key, pin))

    def compare_and_set(self, key: str, pin: Pin, expected: str | None, now: float) -> Pin | None:
        """See :meth:`PinStore.compare_and_set`; one Lua script on the server."""

        def claim() -> Pin | None:
            args = [_pin_text(pin), expected or "", repr(float(now)), _ttl_ms(pin, now)]
            stood = self._claim(keys=[self.prefix + key], args=args)
            return None if stood is None else Pin.from_json(json.loads(stood))

        return self._shared(claim, lambda: self.local.compare_and_set(key, pin, expected, now))

    async def aget(self, key: str) -> Pin | None:
        """:meth:`get` in a worker thread."""
        return await asyncio.to_thread(self.get, key)

    async def aput(self, key: str, pin: Pin) -> None:
        """:meth:`put` in a worker thread."""
        await asyncio.to_thread(self.put, key, pin)

    async def acompare_and_set(
        self, key: str, pin: Pin, expected: str | None, now: float
    ) -> Pin | None:
        """:meth:`compare_and_set` in a worker thread."""
        return await asyncio.to_thread(self.compare_and_set, key, pin, expected, now)

    def _shared(self, shared: Callable[[], T], local: Callable[[], T]) -> T:
        """``shared()`` on Redis, or ``local()`` while Redis is down (never raises its errors)."""
        if self._fallback.should_try():
            try:
                result = shared()
            except self._errors as error:
                self._fallback.failed(error)
            else:
                self._fallback.succeeded()
                return result
        return local()


def _pin_text(pin: Pin) -> str:
    return json.dumps(pin.to_json())


def _ttl_ms(pin: Pin, now: float) -> int:
    """The key's TTL: the pin's remaining life (at least 1 ms)."""
    return max(1, math.ceil((pin.expires_at - now) * 1000.0))
