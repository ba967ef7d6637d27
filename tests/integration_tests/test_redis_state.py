"""Pins and spend pacing shared through a real Redis server (``redis-server``, started here).

Without the binary these tests skip with the reason; ``.ci/run`` installs it and sets
``AVENGERS_REQUIRE_REDIS=1``, which turns the skip into a failure.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from local_chat import make_llm
from manual_clock import ManualClock
from pin_race import SESSIONS, race
from redis_server import RedisServer

from langchain_avengers.policies.ledger import LocalPacerStore
from langchain_avengers.policies.pacing import SpendPacer
from langchain_avengers.policies.pins import Pin
from langchain_avengers.policies.redis_store import RedisPacerState, RedisPinStore
from langchain_avengers.testing import OfflineOpenRouter

TESTS = Path(__file__).resolve().parents[1]
WARM_UP = 10
QUERY = "Prove that there are infinitely many prime numbers."


# ---------------------------------------------------------------------- pins


async def test_redis_compare_and_set_stores_only_over_the_pin_it_expects(redis_url: str) -> None:
    store = RedisPinStore(redis_url)
    first, other = Pin("a", 200.0), Pin("b", 300.0)
    assert store.compare_and_set("c", first, None, 100.0) == first  # put-if-absent wins
    assert store.compare_and_set("c", other, None, 100.0) == first  # loses: "a" stands
    assert store.compare_and_set("c", other, "x", 100.0) == first
    assert await store.acompare_and_set("c", other, "a", 100.0) == other  # moves a -> b
    assert store.get("c") == other
    assert store.compare_and_set("c", first, "b", 300.0) is None  # expired: no move from it
    assert await store.acompare_and_set("c", Pin("a", 500.0), None, 300.0) == Pin("a", 500.0)
    assert store.fallback_reason() is None


def test_redis_pins_hold_under_64_threads(server: OfflineOpenRouter, redis_url: str) -> None:
    answered, store = race(server, RedisPinStore(redis_url))
    assert len(answered) == SESSIONS
    for session, models in answered.items():
        pin = store.get(session)
        assert pin is not None, session
        assert {pin.model} == models, session


# ---------------------------------------------------------------------- pacer


def costs_to_record() -> list[float | None]:
    """Costs of many sizes, unknown ones among them."""
    costs: list[float | None] = []
    for i in range(120):
        costs.append(None if i % 17 == 5 else (i % 7) * 0.0009 + (i % 3) * 1e-7)
    return costs


@pytest.mark.parametrize("target", ["per_call", "per_hour"])
def test_a_redis_ledger_is_the_local_ledger_bit_for_bit(redis_url: str, target: str) -> None:
    def pacer(store: Any, clock: ManualClock) -> SpendPacer:
        rate = {"usd_per_1k_calls": 2.0} if target == "per_call" else {"usd_per_hour": 3.0}
        return SpendPacer(**rate, initial_alpha=0.3, clock=clock, store=store)  # type: ignore[arg-type]

    clock_a, clock_b = ManualClock(1000.0), ManualClock(1000.0)
    local = pacer(LocalPacerStore(), clock_a)
    shared = pacer(RedisPacerState(redis_url, key="bits"), clock_b)
    for i, cost in enumerate(costs_to_record()):
        clock_a.now = clock_b.now = 1000.0 + 7.5 * i
        assert shared.alpha() == local.alpha()
        local.record(cost)
        shared.record(cost)
    assert shared.state() == local.state()
    assert shared.state().calls == 120


def test_pacers_with_other_rules_cannot_share_a_ledger(redis_url: str) -> None:
    SpendPacer(usd_per_1k_calls=2.0, store=RedisPacerState(redis_url, key="k"))
    SpendPacer(usd_per_1k_calls=2.0, store=RedisPacerState(redis_url, key="k"))
    with pytest.raises(ValueError, match="key 'k' holds a pacer ledger of other rules"):
        SpendPacer(usd_per_1k_calls=3.0, store=RedisPacerState(redis_url, key="k"))


def test_without_the_redis_package_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r'pip install "langchain-avengers\[redis\]"'):
        RedisPinStore("redis://127.0.0.1:9/0")


# ---------------------------------------------------------------------- the store going down


def test_calls_go_on_when_redis_stops_mid_run_and_share_again_when_it_is_back(
    server: OfflineOpenRouter, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(0.0)
    pins = RedisPinStore(redis_server.url, clock=clock, retry_after_s=5.0)
    state = RedisPacerState(redis_server.url, clock=clock, retry_after_s=5.0)
    pacer = SpendPacer(usd_per_1k_calls=2.0, store=state)
    llm = make_llm(server, pin_conversations=True, pin_store=pins, pacer=pacer)
    billed = []

    def call(session: str) -> dict[str, Any]:
        message = llm.invoke(QUERY, session_id=session)
        billed.append(message.usage_metadata["total_cost"])  # type: ignore[index]
        return message.response_metadata["avengers"]

    assert "shared_state_down" not in call("before")
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="langchain_avengers.policies.redis_store"):
        down = [call(f"during-{i % 2}") for i in range(6)]
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        f"Redis at 127.0.0.1:{redis_server.port} unreachable (ConnectionError: "
        f"Error 111 connecting to 127.0.0.1:{redis_server.port}. Connection refused.)"
    ] * 2  # one warning for pins, one for the pacer
    # the pacer finds Redis gone when it records the first answer: the next calls say so too
    assert set(down[0]["shared_state_down"]) == {"pins"}
    for info in down[1:]:
        assert set(info["shared_state_down"]) == {"pins", "pacer"}
    assert "conversation pins kept in this process" in down[0]["shared_state_down"]["pins"]
    assert down[2]["pinned"] == {"source": "conversation", "model": down[0]["model"]}
    assert pacer.state().calls == 7  # counted here meanwhile

    redis_server.start()  # same port, empty: the shared ledger is gone with the old process
    assert "shared_state_down" in call("after")  # the retry interval has not passed
    clock.now = 5.0
    assert set(call("after")["shared_state_down"]) == {"pacer"}  # pins back; pacer: at record
    assert "shared_state_down" not in call("after")
    shared = pacer.state()
    # every call since the restart wiped the server's ledger: 6 during the outage and 3 after,
    # the ones counted in this process replayed there
    assert shared.calls == 9
    assert shared.spend_usd == pytest.approx(sum(billed[1:]), rel=1e-12)
    assert pins.get("during-0") is None  # pins set during the outage stayed in this process


def test_redis_clients_fail_fast_and_do_not_retry(redis_url: str) -> None:
    store = RedisPinStore(redis_url)
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.5
    assert store.client.get_retry()._retries == 0


# ---------------------------------------------------------------------- 4 worker processes


def run_workers(server: OfflineOpenRouter, redis_url: str, mode: str, target: float) -> list[dict]:
    """4 worker processes x 50 calls (5 threads each); every answer they report."""
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(TESTS / "redis_worker.py"),
                server.base_url,
                redis_url,
                mode,
                str(worker),
                "50",
                "5",
                repr(target),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(4)
    ]
    answers = []
    for process in workers:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        answers += [json.loads(line) for line in out.splitlines()]
    assert len(answers) == 200
    return answers


@pytest.mark.slow
def test_four_workers_keep_every_conversation_on_one_model(
    server: OfflineOpenRouter, redis_url: str
) -> None:
    answers = run_workers(server, redis_url, "conversations", 1.0)
    by_session: dict[str, set[str]] = {}
    for answer in answers:
        by_session.setdefault(answer["session"], set()).add(answer["model"])
    assert len(by_session) == 25
    store = RedisPinStore(redis_url)
    for session, models in by_session.items():
        pin = store.get(session)
        assert pin is not None, session
        assert {pin.model} == models, session
    shared = SpendPacer(usd_per_1k_calls=1.0, window_calls=20, store=RedisPacerState(redis_url))
    state = shared.state()
    assert state.calls == 200
    assert state.spend_usd == pytest.approx(sum(a["cost"] for a in answers), rel=1e-12)


@pytest.mark.slow
def test_four_workers_pace_spend_to_one_shared_target(
    server: OfflineOpenRouter, redis_url: str, router: Any
) -> None:
    llm = make_llm(server)
    cheap = llm.invoke(QUERY, alpha=0.0).usage_metadata["total_cost"]  # type: ignore[index]
    dear = llm.invoke(QUERY, alpha=1.0).usage_metadata["total_cost"]  # type: ignore[index]
    target = 1000.0 * (cheap + dear) / 2  # USD per 1,000 calls, between the extremes
    answers = run_workers(server, redis_url, "paced", target)
    shared = SpendPacer(
        usd_per_1k_calls=target, window_calls=20, store=RedisPacerState(redis_url)
    ).state()
    assert shared.calls == 200
    assert shared.spend_usd == pytest.approx(sum(a["cost"] for a in answers), rel=1e-12)
    # after warm-up (each worker's first 10 calls, two windows over the 4 workers), the
    # spend per call is within 10% of the target
    after = [a["cost"] for w in range(4) for a in answers[w * 50 + WARM_UP : (w + 1) * 50]]
    mean = sum(after) / len(after)
    assert abs(mean - target / 1000.0) <= 0.1 * target / 1000.0, (cheap, dear, mean, shared)
