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
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from langchain_avengers.policies.ledger import (
    UNKNOWN_COST_MEMORY,
    Ledger,
    PacerRules,
    accrue,
    replay,
)
from langchain_avengers.policies.pins import InMemoryPinStore, Pin

__all__ = ["DEFAULT_RETRY_AFTER_S", "DEFAULT_TIMEOUT_S", "RedisPacerState", "RedisPinStore"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 0.5
"""Most seconds one Redis operation may take to connect, and again to answer."""
DEFAULT_RETRY_AFTER_S = 5.0
"""Seconds between attempts to use Redis again after it failed."""
MAX_PENDING_COSTS = 100_000
"""Costs a pacer keeps to replay while Redis is down; older ones are dropped beyond it."""

T = TypeVar("T")


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


class _Fallback:
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


def _errors() -> tuple[type[Exception], ...]:
    redis = _redis()
    return (redis.exceptions.RedisError, OSError)


def _where(client: Any) -> str:
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    host, port = kwargs.get("host"), kwargs.get("port")
    return f"Redis at {host}:{port}" if host else "Redis"


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
        self._fallback = _Fallback("conversation pins", _where(self.client), retry_after_s, clock)
        self._errors = _errors()
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


# ---------------------------------------------------------------------- pacer

_RECORD = """
local per_call, per_second, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lo, hi, initial = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local memory, now, rules = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local span = hi - lo
local raw = redis.call('HGETALL', KEYS[1])
local s = {}
for i = 1, #raw, 2 do s[raw[i]] = raw[i + 1] end
if s.rules == nil then
  s = {level = initial, calls = 0, unknown = 0, spend = 0, forgiven = 0, started = now,
       last = now}
elseif s.rules ~= rules then
  return redis.error_reply('AVENGERS_RULES ' .. s.rules)
end
local level, calls, unknown = tonumber(s.level), tonumber(s.calls), tonumber(s.unknown)
local spend, forgiven = tonumber(s.spend), tonumber(s.forgiven)
local started, last = tonumber(s.started), tonumber(s.last)
local mean = nil
if s.mean ~= nil and s.mean ~= '' then mean = tonumber(s.mean) end
local function move(credit)
  local l = level + span * credit / window
  local floor = lo - span
  if l < floor then forgiven = forgiven + (floor - l) * window / span end
  if l < floor then l = floor end
  if l > hi then l = hi end
  level = l
end
local function accrue(t)
  if per_second == 0 then return end
  local elapsed = t - last
  if elapsed < 0 then elapsed = 0 end
  if t > last then last = t end
  move(per_second * elapsed)
end
for i = 10, #ARGV, 2 do
  accrue(tonumber(ARGV[i + 1]))
  calls = calls + 1
  local cost
  if ARGV[i] == '' then
    unknown = unknown + 1
    if mean == nil then cost = per_call else cost = mean end
  else
    cost = tonumber(ARGV[i])
    local n = calls - unknown
    if n > memory then n = memory end
    local weight = 1.0 / n
    local previous = mean
    if previous == nil then previous = cost end
    mean = previous + weight * (cost - previous)
  end
  spend = spend + cost
  move(per_call - cost)
end
accrue(now)
local function f(x) return string.format('%.17g', x) end
local m = ''
if mean ~= nil then m = f(mean) end
local out = {'rules', rules, 'level', f(level), 'calls', f(calls), 'unknown', f(unknown),
             'spend', f(spend), 'forgiven', f(forgiven), 'mean', m, 'started', f(started),
             'last', f(last)}
redis.call('HSET', KEYS[1], unpack(out))
return out
"""
"""KEYS: the ledger's hash. ARGV: the rules' numbers, now, the rules' fingerprint, then
``cost, at`` pairs ('' for an unknown cost). Credits time up to now (hourly target) and
returns the ledger as field, value pairs."""


class RedisPacerState:
    """A ``SpendPacer`` ledger on a Redis server, shared by every worker's pacer.

    Give each worker ``SpendPacer(usd_per_1k_calls=..., store=RedisPacerState(url, key=...))``
    with the same target: their recorded costs add up in one ledger, so together they pace
    toward one target instead of each spending all of it. Each record is one Lua script (one
    round trip) that applies the same step as the in-process pacer; the pacer's alpha comes
    from the ledger this process last saw (no I/O), so it lags the other workers by at most
    the calls they finished since this worker's last record.

    Pacers sharing a key must have the same target, window and alpha bounds: a pacer with
    others raises ``ValueError`` when built.

    Args:
        url: ``redis://host:port/db`` (ignored when ``client`` is given).
        key: The hash holding the ledger: one per budget.
        client: A ``redis.Redis`` to use instead (its own timeouts then apply).
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
        key: str = "langchain_avengers:pacer",
        client: Any = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client if client is not None else connect(url, timeout_s)
        self.key = key
        self._fallback = _Fallback("spend pacing", _where(self.client), retry_after_s, clock)
        self._errors = _errors()
        self._script = self.client.register_script(_RECORD)
        self._lock = threading.Lock()
        self._seen: Ledger | None = None
        """The ledger as last read (or, while Redis is down, as counted here)."""
        self._pending: list[tuple[float | None, float]] = []
        """Costs counted here while Redis was down, to replay there."""
        self.dropped_costs = 0
        """Costs not replayed because more than ``MAX_PENDING_COSTS`` waited."""

    def __repr__(self) -> str:
        return f"RedisPacerState({self._fallback.where}, key={self.key!r})"

    def fallback_reason(self) -> str | None:
        """Why the ledger is kept in this process for now, or ``None`` while Redis keeps it."""
        return self._fallback.reason

    def attach(self, rules: PacerRules, now: float) -> None:
        """Start the shared ledger, or read it and check its rules.

        Raises:
            ValueError: the key holds a ledger of other rules (another target or window).
        """
        with self._lock:
            self._seen = Ledger.fresh(rules, now)
        self._send(rules, [], now, check=True)

    def view(self, rules: PacerRules, now: float) -> Ledger:
        """The ledger last seen, with time credited up to ``now`` (no I/O)."""
        with self._lock:
            seen = self._seen if self._seen is not None else Ledger.fresh(rules, now)
        return accrue(seen, rules, now)

    def record(self, rules: PacerRules, cost: float | None, now: float) -> Ledger:
        """Count one cost on the server (or here while it is down)."""
        return self._send(rules, [(cost, now)], now)

    def snapshot(self, rules: PacerRules, now: float) -> Ledger:
        """The shared ledger as of ``now`` (read from the server when it answers)."""
        return self._send(rules, [], now)

    def _send(
        self,
        rules: PacerRules,
        steps: list[tuple[float | None, float]],
        now: float,
        *,
        check: bool = False,
    ) -> Ledger:
        """Apply ``steps`` (and any pending ones) on the server; locally if it is down."""
        if self._fallback.should_try():
            with self._lock:
                batch, self._pending = [*self._pending, *steps], []
            try:
                ledger = self._run(rules, batch, now)
            except self._errors as error:
                if check and _rules_error(error):
                    raise self._rules_mismatch(error) from None
                with self._lock:
                    self._pending = batch[-MAX_PENDING_COSTS:] + self._pending
                    self.dropped_costs += max(0, len(batch) - MAX_PENDING_COSTS)
                self._fallback.failed(error)
                with self._lock:
                    self._seen = replay(self._current(rules, now), rules, steps)
                    return accrue(self._seen, rules, now)
            self._fallback.succeeded()
            with self._lock:
                if self._seen is None or ledger.calls >= self._seen.calls:
                    self._seen = ledger
                return ledger
        with self._lock:
            self._pending.extend(steps)
            if len(self._pending) > MAX_PENDING_COSTS:
                self.dropped_costs += len(self._pending) - MAX_PENDING_COSTS
                del self._pending[:-MAX_PENDING_COSTS]
            self._seen = replay(self._current(rules, now), rules, steps)
            return accrue(self._seen, rules, now)

    def _current(self, rules: PacerRules, now: float) -> Ledger:
        return self._seen if self._seen is not None else Ledger.fresh(rules, now)

    def _run(
        self, rules: PacerRules, steps: list[tuple[float | None, float]], now: float
    ) -> Ledger:
        args: list[str] = [
            _num(rules.per_call_usd),
            _num(rules.per_second_usd),
            _num(rules.window_usd),
            _num(rules.min_alpha),
            _num(rules.max_alpha),
            _num(rules.initial_alpha),
            str(UNKNOWN_COST_MEMORY),
            _num(now),
            rules.fingerprint(),
        ]
        for cost, at in steps:
            args += ["" if cost is None else _num(cost), _num(at)]
        raw = self._script(keys=[self.key], args=args)
        fields = dict(zip(raw[::2], raw[1::2], strict=True))
        return Ledger(
            level=float(fields["level"]),
            calls=int(float(fields["calls"])),
            unknown=int(float(fields["unknown"])),
            spend=float(fields["spend"]),
            forgiven=float(fields["forgiven"]),
            mean_cost=float(fields["mean"]) if fields["mean"] else None,
            started=float(fields["started"]),
            last=float(fields["last"]),
        )

    def _rules_mismatch(self, error: Exception) -> ValueError:
        theirs = str(error).split("AVENGERS_RULES", 1)[-1].strip()
        return ValueError(
            f"RedisPacerState: key {self.key!r} holds a pacer ledger of other rules "
            f"(per-call USD|per-second USD|window USD|min alpha|max alpha|initial alpha = "
            f"{theirs}); give every worker's SpendPacer the same target, window and bounds, or "
            "use another key"
        )


def _rules_error(error: Exception) -> bool:
    return "AVENGERS_RULES" in str(error)


def _num(value: float) -> str:
    """A float as text that reads back to the same double."""
    return repr(float(value))
