"""A ``SpendPacer`` ledger on Redis; see :mod:`~langchain_avengers.policies.redis_store`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from langchain_avengers.policies.ledger import (
    UNKNOWN_COST_MEMORY,
    Ledger,
    PacerRules,
    accrue,
    replay,
)
from langchain_avengers.policies.redis_client import (
    DEFAULT_RETRY_AFTER_S,
    DEFAULT_TIMEOUT_S,
    Fallback,
    connect,
    redis_errors,
    where,
)

__all__ = ["MAX_PENDING_COSTS", "RedisPacerState"]

MAX_PENDING_COSTS = 100_000
"""Costs a pacer keeps to replay while Redis is down; older ones are dropped beyond it."""


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
        self._fallback = Fallback("spend pacing", where(self.client), retry_after_s, clock)
        self._errors = redis_errors()
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
