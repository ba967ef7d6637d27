"""Pins that keep a conversation on one model.

A pin says "conversation K is served by model M until time T". With ``pin_conversations``
on, the first routed call of a conversation pins its model; later calls go to it while it
can serve them (a capability, the context length or a cost cap can force a change, which
moves the pin). Each pinned call pushes the expiry ``ttl`` seconds further, so a
conversation idle for longer than the TTL is routed afresh.

Stores: :class:`InMemoryPinStore` (one process; the default), :class:`LangGraphPinStore`
over any LangGraph ``BaseStore`` (``InMemoryStore``, ``PostgresStore``...), which workers
sharing that store share, and ``RedisPinStore`` (:mod:`langchain_avengers.policies.redis_store`).

**The first pin is atomic.** Concurrent first calls of a conversation may route to different
models (another alpha, another pacer reading). Each call claims the pin with
:meth:`PinStore.compare_and_set` ("store my pin if the live pin still names the model I saw"),
and a call that loses follows the pin that won, so every answer of a conversation comes from
the model its pin names. How atomic that is depends on the store: see each store's class.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from langgraph.store.base import BaseStore

__all__ = [
    "DEFAULT_PIN_TTL_S",
    "InMemoryPinStore",
    "LangGraphPinStore",
    "Pin",
    "PinStore",
    "Pinning",
]

logger = logging.getLogger(__name__)

DEFAULT_PIN_TTL_S = 3600.0
"""A conversation idle for an hour is routed afresh."""


# ---------------------------------------------------------------------- routing text


# ---------------------------------------------------------------------- pins


@dataclass(frozen=True)
class Pin:
    """A conversation's model, and when the pin lapses (Unix time, seconds)."""

    model: str
    expires_at: float

    def to_json(self) -> dict[str, Any]:
        """The value stored for the pin."""
        return {"model": self.model, "expires_at": self.expires_at}

    @classmethod
    def from_json(cls, value: object) -> Pin | None:
        """A stored pin, or ``None`` (with a warning) when the value is not one."""
        if isinstance(value, Mapping):
            model, expires = value.get("model"), value.get("expires_at")
            if (
                isinstance(model, str)
                and model
                and isinstance(expires, (int, float))
                and not isinstance(expires, bool)
                and math.isfinite(expires)
            ):
                return cls(model, float(expires))
        logger.warning("ignoring a stored conversation pin that is not one: %.200r", value)
        return None


@runtime_checkable
class PinStore(Protocol):
    """Where pins live; keys are conversation ids. Implementations must be thread-safe."""

    def get(self, key: str) -> Pin | None:
        """The conversation's pin, if any (expired ones may be returned)."""
        ...

    def put(self, key: str, pin: Pin) -> None:
        """Set or replace the conversation's pin."""
        ...

    def compare_and_set(self, key: str, pin: Pin, expected: str | None, now: float) -> Pin | None:
        """Store ``pin`` if the live pin of ``key`` names ``expected``, as one atomic step.

        Args:
            key: The conversation id.
            pin: The pin to store.
            expected: The model of the live pin the caller saw, ``None`` for no live pin (a
                first call: put-if-absent).
            now: Unix time now; a stored pin with ``expires_at <= now`` counts as absent.

        Returns:
            The live pin after the step: ``pin`` when it was stored, else the one that
            stands (``None`` when none does).
        """
        ...

    async def aget(self, key: str) -> Pin | None:
        """Async :meth:`get`."""
        ...

    async def aput(self, key: str, pin: Pin) -> None:
        """Async :meth:`put`."""
        ...

    async def acompare_and_set(
        self, key: str, pin: Pin, expected: str | None, now: float
    ) -> Pin | None:
        """Async :meth:`compare_and_set`."""
        ...


def live_model(pin: Pin | None, now: float) -> str | None:
    """The model of ``pin`` unless it is absent or expired at ``now``."""
    return pin.model if pin is not None and pin.expires_at > now else None


class InMemoryPinStore:
    """Pins of one process: a bounded, thread-safe LRU; expired pins are dropped when read.

    :meth:`compare_and_set` runs under the store's lock: atomic among the process's threads
    and event loops.

    Args:
        max_entries: Most conversations kept; the least recently used go first.
        clock: Unix time now (seconds); the expiry of pins is read against it.
    """

    def __init__(
        self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.time
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            msg = f"max_entries: expected an int >= 1, got {max_entries!r}"
            raise ValueError(msg)
        self.max_entries = max_entries
        self.clock = clock
        self._pins: OrderedDict[str, Pin] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pins)

    def get(self, key: str) -> Pin | None:
        """The pin of ``key`` unless it has expired."""
        with self._lock:
            pin = self._pins.get(key)
            if pin is None:
                return None
            if pin.expires_at <= self.clock():
                del self._pins[key]
                return None
            self._pins.move_to_end(key)
            return pin

    def put(self, key: str, pin: Pin) -> None:
        """Set the pin of ``key``; the least recently used pins go beyond ``max_entries``."""
        with self._lock:
            self._pins[key] = pin
            self._pins.move_to_end(key)
            while len(self._pins) > self.max_entries:
                self._pins.popitem(last=False)

    def compare_and_set(self, key: str, pin: Pin, expected: str | None, now: float) -> Pin | None:
        """See :meth:`PinStore.compare_and_set` (under the store's lock)."""
        with self._lock:
            current = self._pins.get(key)
            if live_model(current, now) != expected:
                return current if live_model(current, now) is not None else None
            self._pins[key] = pin
            self._pins.move_to_end(key)
            while len(self._pins) > self.max_entries:
                self._pins.popitem(last=False)
            return pin

    async def aget(self, key: str) -> Pin | None:
        """:meth:`get` (no I/O, so it runs inline)."""
        return self.get(key)

    async def aput(self, key: str, pin: Pin) -> None:
        """:meth:`put` (no I/O, so it runs inline)."""
        self.put(key, pin)

    async def acompare_and_set(
        self, key: str, pin: Pin, expected: str | None, now: float
    ) -> Pin | None:
        """:meth:`compare_and_set` (no I/O, so it runs inline)."""
        return self.compare_and_set(key, pin, expected, now)


class LangGraphPinStore:
    """Pins kept in a LangGraph ``BaseStore``, so every worker using that store shares them.

    Each pin is one item (``{"model", "expires_at"}``) under ``namespace``, keyed by the
    conversation id; a store that supports TTLs is also told to drop it after the pin's TTL.

    **Atomicity.** ``BaseStore`` has no conditional write (its ``put`` always overwrites), so
    :meth:`compare_and_set` is a read then a write under a lock shared by every
    ``LangGraphPinStore`` of this process over the same store object: atomic among the
    process's threads and tasks, but two *processes* claiming a conversation's first pin in
    the same instant can still both win (the last write stands). For workers in several
    processes, use ``RedisPinStore``, whose claim is one Lua script on the server.

    Args:
        store: Any ``langgraph.store.base.BaseStore`` (``InMemoryStore``, ``PostgresStore``...).
        namespace: Where pins live in the store.
    """

    def __init__(
        self, store: BaseStore, namespace: tuple[str, ...] = ("langchain_avengers", "pins")
    ) -> None:
        from langgraph.store.base import BaseStore

        if not isinstance(store, BaseStore):
            msg = f"store: expected a langgraph BaseStore, got {type(store).__name__}"
            raise TypeError(msg)
        self.store = store
        self.namespace = tuple(namespace)

    def get(self, key: str) -> Pin | None:
        """The stored pin of ``key``, if any."""
        item = self.store.get(self.namespace, key)
        return None if item is None else Pin.from_json(item.value)

    def put(self, key: str, pin: Pin) -> None:
        """Store the pin of ``key``."""
        self.store.put(self.namespace, key, pin.to_json(), index=False, **self._ttl(pin))

    def compare_and_set(self, key: str, pin: Pin, expected: str | None, now: float) -> Pin | None:
        """See :meth:`PinStore.compare_and_set` (atomic within this process only, see above)."""
        with _store_lock(self.store):
            current = self.get(key)
            if live_model(current, now) != expected:
                return current if live_model(current, now) is not None else None
            self.put(key, pin)
            return pin

    async def aget(self, key: str) -> Pin | None:
        """Async :meth:`get`."""
        item = await self.store.aget(self.namespace, key)
        return None if item is None else Pin.from_json(item.value)

    async def acompare_and_set(
        self, key: str, pin: Pin, expected: str | None, now: float
    ) -> Pin | None:
        """:meth:`compare_and_set` in a worker thread (the lock is a thread lock).

        The store's sync methods are used from that thread; LangGraph's async stores
        (``AsyncPostgresStore``) serve them from another thread by design.
        """
        return await asyncio.to_thread(self.compare_and_set, key, pin, expected, now)

    async def aput(self, key: str, pin: Pin) -> None:
        """Async :meth:`put`."""
        await self.store.aput(self.namespace, key, pin.to_json(), index=False, **self._ttl(pin))

    def _ttl(self, pin: Pin) -> dict[str, float]:
        """The store's own TTL (minutes) where it supports one; expiry is also checked on read."""
        if not getattr(self.store, "supports_ttl", False):
            return {}
        return {"ttl": max(pin.expires_at - time.time(), 0.0) / 60.0}


_STORE_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_STORE_LOCKS_GUARD = threading.Lock()


def _store_lock(store: object) -> threading.Lock:
    """One lock per LangGraph store object, shared by every adapter over it."""
    with _STORE_LOCKS_GUARD:
        lock = _STORE_LOCKS.get(store)
        if lock is None:
            lock = _STORE_LOCKS[store] = threading.Lock()
        return lock


MAX_CLAIMS = 8
"""Claims one call makes before it goes with its own plan (only under constant pin churn)."""


@dataclass(frozen=True)
class Pinning:
    """Pins in a store with a TTL: what the routing path asks about a conversation."""

    store: PinStore
    ttl_s: float = DEFAULT_PIN_TTL_S
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def lookup(self, key: str) -> Pin | None:
        """The conversation's live pin."""
        return self._live(self.store.get(key))

    async def alookup(self, key: str) -> Pin | None:
        """Async :meth:`lookup`."""
        return self._live(await self.store.aget(key))

    def keep(self, key: str, model: str) -> None:
        """Pin the conversation to ``model`` for another TTL."""
        self.store.put(key, Pin(model, self.clock() + self.ttl_s))

    async def akeep(self, key: str, model: str) -> None:
        """Async :meth:`keep`."""
        await self.store.aput(key, Pin(model, self.clock() + self.ttl_s))

    def claim(self, key: str, model: str, seen: Pin | None) -> Pin | None:
        """Pin the conversation to ``model`` for another TTL if its pin is still ``seen``.

        Returns:
            The live pin after the claim: one naming ``model`` when it won, else the pin
            another call set meanwhile (``None``: the pin seen is gone).
        """
        now = self.clock()
        expected = live_model(seen, now)
        return self.store.compare_and_set(key, Pin(model, now + self.ttl_s), expected, now)

    async def aclaim(self, key: str, model: str, seen: Pin | None) -> Pin | None:
        """Async :meth:`claim`."""
        now = self.clock()
        expected = live_model(seen, now)
        return await self.store.acompare_and_set(key, Pin(model, now + self.ttl_s), expected, now)

    def fallback_reason(self) -> str | None:
        """Why pins are kept in this process only for now (a shared store is down), if so."""
        reason = getattr(self.store, "fallback_reason", None)
        return reason() if callable(reason) else None

    def _live(self, pin: Pin | None) -> Pin | None:
        return pin if pin is not None and pin.expires_at > self.clock() else None


def check_pin_ttl(value: object, where: str = "pin_ttl") -> float:
    """Seconds a pin lasts: a finite number > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        msg = (
            f"{where}: expected seconds > 0 (how long an idle conversation stays pinned), "
            f"got {value!r}"
        )
        raise ValueError(msg)
    return float(value)


def check_pin_store(value: object, where: str = "pin_store") -> PinStore | None:
    """None, a :class:`PinStore`, or a LangGraph ``BaseStore`` (as a :class:`LangGraphPinStore`).

    A ``BaseStore`` is checked first: its ``get``/``put`` have the same names as a pin
    store's but other arguments.
    """
    if value is None:
        return None
    try:
        from langgraph.store.base import BaseStore
    except ImportError:  # pragma: no cover - langgraph comes with langchain
        BaseStore = None  # type: ignore[assignment,misc]  # noqa: N806
    if BaseStore is not None and isinstance(value, BaseStore):
        return LangGraphPinStore(value)
    if isinstance(value, PinStore):
        return value
    msg = (
        f"{where}: expected a PinStore (InMemoryPinStore, LangGraphPinStore, RedisPinStore: "
        f"get, put, compare_and_set and their async forms) or a LangGraph BaseStore, got "
        f"{type(value).__name__}"
    )
    raise TypeError(msg)
