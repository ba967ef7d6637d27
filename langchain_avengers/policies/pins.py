"""Pins that keep a conversation on one model.

A pin says "conversation K is served by model M until time T". With ``pin_conversations``
on, the first routed call of a conversation pins its model; later calls go to it while it
can serve them (a capability, the context length or a cost cap can force a change, which
moves the pin). Each pinned call pushes the expiry ``ttl`` seconds further, so a
conversation idle for longer than the TTL is routed afresh.

Stores: :class:`InMemoryPinStore` (one process; the default) and :class:`LangGraphPinStore`
over any LangGraph ``BaseStore`` (``InMemoryStore``, ``PostgresStore``...), which workers
sharing that store share.
"""

from __future__ import annotations

import logging
import math
import threading
import time
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

    async def aget(self, key: str) -> Pin | None:
        """Async :meth:`get`."""
        ...

    async def aput(self, key: str, pin: Pin) -> None:
        """Async :meth:`put`."""
        ...


class InMemoryPinStore:
    """Pins of one process: a bounded, thread-safe LRU; expired pins are dropped when read.

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

    async def aget(self, key: str) -> Pin | None:
        """:meth:`get` (no I/O, so it runs inline)."""
        return self.get(key)

    async def aput(self, key: str, pin: Pin) -> None:
        """:meth:`put` (no I/O, so it runs inline)."""
        self.put(key, pin)


class LangGraphPinStore:
    """Pins kept in a LangGraph ``BaseStore``, so every worker using that store shares them.

    Each pin is one item (``{"model", "expires_at"}``) under ``namespace``, keyed by the
    conversation id; a store that supports TTLs is also told to drop it after the pin's TTL.

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

    async def aget(self, key: str) -> Pin | None:
        """Async :meth:`get`."""
        item = await self.store.aget(self.namespace, key)
        return None if item is None else Pin.from_json(item.value)

    async def aput(self, key: str, pin: Pin) -> None:
        """Async :meth:`put`."""
        await self.store.aput(self.namespace, key, pin.to_json(), index=False, **self._ttl(pin))

    def _ttl(self, pin: Pin) -> dict[str, float]:
        """The store's own TTL (minutes) where it supports one; expiry is also checked on read."""
        if not getattr(self.store, "supports_ttl", False):
            return {}
        return {"ttl": max(pin.expires_at - time.time(), 0.0) / 60.0}


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
        f"{where}: expected a PinStore (InMemoryPinStore, LangGraphPinStore) or a LangGraph "
        f"BaseStore, got {type(value).__name__}"
    )
    raise TypeError(msg)
