"""Budgets: the spend pacer, bootstrap bounds and the per-call cost estimate.

The pacer is driven by synthetic routers: a call at alpha goes to a dear model with a
probability rising with alpha (else to a cheap one), with log-normal noise on both costs, so
the expected cost of a call is known in closed form and grows with alpha, as the router's does.
"""

from __future__ import annotations

import asyncio
import math
import sys
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from manual_clock import ManualClock

from langchain_avengers.evaluation.budgets import bootstrap_means
from langchain_avengers.policies.pacing import DEFAULT_WINDOW_CALLS, SpendPacer, expected_call_cost

CHEAP, DEAR = 0.0005, 0.01
"""USD per call of the synthetic cheap and dear models (their means)."""


def dear_share(alpha: float) -> float:
    """Share of calls the synthetic router sends to the dear model at ``alpha``."""
    return min(max((alpha - 0.2) / 0.6, 0.0), 1.0)


def expected_cost(alpha: float, dear: float = DEAR) -> float:
    return CHEAP + dear_share(alpha) * (dear - CHEAP)


def synthetic_call(rng: np.random.Generator, alpha: float, dear: float = DEAR) -> float:
    """One call's cost: log-normal around the cheap or dear mean, with means as given."""
    mean = dear if rng.random() < dear_share(alpha) else CHEAP
    return float(mean * rng.lognormal(-0.5, 1.0))  # mean of lognormal(-0.5, 1) is 1


def run(
    pacer: SpendPacer, n: int, seed: int = 0, dear: Callable[[int], float] = lambda i: DEAR
) -> tuple[np.ndarray, np.ndarray]:
    """Drive ``pacer`` for ``n`` calls; the alphas it gave and the costs it recorded."""
    rng = np.random.default_rng(seed)
    alphas, costs = np.empty(n), np.empty(n)
    for i in range(n):
        alphas[i] = pacer.alpha()
        costs[i] = synthetic_call(rng, alphas[i], dear(i))
        pacer.record(costs[i])
    return alphas, costs


# ---------------------------------------------------------------- convergence


@pytest.mark.parametrize("target_alpha", [0.3, 0.5, 0.7])
def test_pacer_holds_the_target_rate_after_warm_up(target_alpha: float) -> None:
    target = expected_cost(target_alpha)  # USD per call, reachable at alpha = target_alpha
    pacer = SpendPacer(usd_per_1k_calls=1000 * target)
    alphas, costs = run(pacer, 4000, seed=1)
    assert costs[300:].mean() / target == pytest.approx(1.0, abs=0.10)
    assert np.median(alphas[300:]) == pytest.approx(target_alpha, abs=0.1)
    assert pacer.state().spend_usd == pytest.approx(costs.sum())


def test_pacer_starts_cheap_and_never_overspends_during_warm_up() -> None:
    target = expected_cost(0.6)
    pacer = SpendPacer(usd_per_1k_calls=1000 * target)
    alphas, costs = run(pacer, 150, seed=2)
    assert alphas[0] == 0.0
    assert np.all(np.diff(alphas[:20]) > 0)  # climbs while calls cost less than the target
    assert costs.sum() <= 150 * target


def test_pacer_follows_a_shift_mid_stream() -> None:
    """The dear model becomes three times dearer after call 2,000."""
    target = expected_cost(0.6)
    pacer = SpendPacer(usd_per_1k_calls=1000 * target)
    alphas, costs = run(pacer, 5000, seed=3, dear=lambda i: DEAR if i < 2000 else 3 * DEAR)
    before_alpha = float(np.median(alphas[1000:2000]))
    # had alpha stayed where it was, spend would now be far above the target
    assert expected_cost(before_alpha, 3 * DEAR) > 1.5 * target
    assert costs[300:2000].mean() / target == pytest.approx(1.0, abs=0.10)
    assert costs[2500:].mean() / target == pytest.approx(1.0, abs=0.10)
    assert np.median(alphas[2500:]) < before_alpha - 0.1


@pytest.mark.parametrize("target", [0.1 * CHEAP, 5 * DEAR])
def test_pacer_stays_within_bounds_when_the_target_is_out_of_reach(target: float) -> None:
    pacer = SpendPacer(usd_per_1k_calls=1000 * target, min_alpha=0.2, max_alpha=0.9)
    alphas, _ = run(pacer, 2000, seed=4)
    assert alphas.min() >= 0.2
    assert alphas.max() <= 0.9
    state = pacer.state()
    if target < CHEAP:  # even the cheapest routing overspends: sits at the floor
        assert state.at_bound == "min"
        assert state.forgiven_usd > 0
    else:  # the dearest routing underspends: sits at the top, banking nothing
        assert state.at_bound == "max"
        assert state.forgiven_usd == 0


def test_debt_never_exceeds_one_window_plus_the_head_start_plus_forgiven() -> None:
    rng = np.random.default_rng(5)
    for initial in (0.0, 0.5):
        target = expected_cost(0.5)
        pacer = SpendPacer(usd_per_1k_calls=1000 * target, initial_alpha=initial)
        window_usd = DEFAULT_WINDOW_CALLS * target
        for _ in range(3000):
            alpha = pacer.alpha()
            pacer.record(synthetic_call(rng, alpha, dear=5 * DEAR))  # heavy, bursty costs
            state = pacer.state()
            debt = state.spend_usd - state.allowance_usd
            assert debt <= window_usd * (1 + initial) + state.forgiven_usd + 1e-12


def test_each_call_moves_alpha_by_its_share_of_the_window() -> None:
    pacer = SpendPacer(usd_per_1k_calls=2.0, initial_alpha=0.5, window_calls=10)
    pacer.record(0.002)  # exactly the target: no change
    assert pacer.alpha() == pytest.approx(0.5)
    pacer.record(0.004)  # one call's allowance too much: down by 1/10 of the range
    assert pacer.alpha() == pytest.approx(0.4)
    pacer.record(0.0)  # one call's allowance saved: back up
    assert pacer.alpha() == pytest.approx(0.5)
    state = pacer.state()
    assert (state.calls, state.spend_usd, state.allowance_usd) == pytest.approx((3, 0.006, 0.006))


def test_debt_below_the_floor_is_paid_back_before_alpha_rises() -> None:
    pacer = SpendPacer(usd_per_1k_calls=1.0, window_calls=10)  # 0.001 per call, at alpha 0
    pacer.record(0.001 + 0.005)  # half a window of debt, remembered below the floor
    assert pacer.alpha() == 0.0
    for _ in range(5):  # five free calls pay it back
        pacer.record(0.0)
    assert pacer.alpha() == pytest.approx(0.0, abs=1e-12)
    pacer.record(0.0)
    assert pacer.alpha() == pytest.approx(0.1)
    pacer.record(0.001 + 0.05)  # five windows of debt: all beyond one window is forgiven
    state = pacer.state()
    assert state.alpha == 0.0
    assert state.forgiven_usd == pytest.approx(0.05 - 0.001 - 0.01)


# ---------------------------------------------------------------- per hour, unknown costs


def test_hourly_target_with_an_injected_clock() -> None:
    clock = ManualClock(1000.0)
    pacer = SpendPacer(usd_per_hour=3.6, window_seconds=600, clock=clock)  # $0.001 a second
    assert pacer.alpha() == 0.0
    clock.now += 300  # half a window of allowance, no spend
    assert pacer.alpha() == pytest.approx(0.5)
    pacer.record(0.15)  # 150 s worth of allowance
    assert pacer.alpha() == pytest.approx(0.25)
    clock.now += 10_000  # a quiet night: credit is capped at max_alpha, not banked
    assert pacer.alpha() == 1.0
    pacer.record(0.3)
    assert pacer.alpha() == pytest.approx(0.5)
    state = pacer.state()
    assert state.allowance_usd == pytest.approx(0.001 * 10_300)
    assert state.spend_usd == pytest.approx(0.45)
    clock.now -= 5  # a clock that steps back credits nothing
    assert pacer.alpha() == pytest.approx(0.5)


def test_hourly_target_holds_on_a_steady_stream() -> None:
    clock = ManualClock(1000.0)
    target_per_call = expected_cost(0.5)
    # one call every 2 s: 1,800 calls an hour
    pacer = SpendPacer(usd_per_hour=1800 * target_per_call, clock=clock)
    rng = np.random.default_rng(6)
    costs = []
    for _ in range(5400):  # three hours
        clock.now += 2.0
        cost = synthetic_call(rng, pacer.alpha())
        pacer.record(cost)
        costs.append(cost)
    per_hour = np.add.reduceat(np.array(costs), [0, 1800, 3600])
    assert per_hour[1:] / (1800 * target_per_call) == pytest.approx([1.0, 1.0], abs=0.10)


def test_unknown_costs_count_as_the_recent_mean() -> None:
    pacer = SpendPacer(usd_per_1k_calls=1.0, initial_alpha=0.5, window_calls=10)
    pacer.record(None)  # nothing known yet: alpha stays
    pacer.record(float("nan"))
    assert pacer.alpha() == pytest.approx(0.5)
    pacer.record(0.003)
    pacer.record(0.001)
    before = pacer.alpha()
    pacer.record(None)  # counted as the mean of 0.003 and 0.001
    assert pacer.alpha() == pytest.approx(before - (0.002 - 0.001) / 0.01)
    state = pacer.state()
    assert (state.calls, state.unknown_costs) == (5, 3)
    assert state.spend_usd == pytest.approx(0.001 + 0.001 + 0.003 + 0.001 + 0.002)


# ---------------------------------------------------------------- concurrency


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond, so unguarded read-modify-writes would collide."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_threads_share_one_pacer_without_losing_updates() -> None:
    # a huge window keeps alpha away from its bounds, so the end state depends only on totals
    pacer = SpendPacer(usd_per_1k_calls=1.0, initial_alpha=0.5, window_calls=1e7)
    per_thread = 5000
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for i in range(per_thread):
            assert 0.0 <= pacer.alpha() <= 1.0
            pacer.record(0.0005 if i % 2 else 0.0015)  # averages exactly the target

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = pacer.state()
    assert state.calls == 8 * per_thread
    assert state.spend_usd == pytest.approx(8 * per_thread * 0.001)
    assert state.alpha == pytest.approx(0.5, abs=1e-9)


async def test_coroutines_and_worker_threads_share_one_pacer() -> None:
    pacer = SpendPacer(usd_per_1k_calls=1.0, initial_alpha=0.5, window_calls=1e7)

    async def call(i: int) -> float:
        alpha = pacer.alpha()
        await asyncio.sleep(0)  # other calls run between routing and the answer
        cost = 0.0005 if i % 2 else 0.0015
        if i % 3:
            pacer.record(cost)
        else:
            await asyncio.to_thread(pacer.record, cost)
        return alpha

    alphas = await asyncio.gather(*(call(i) for i in range(600)))
    assert all(0.0 <= a <= 1.0 for a in alphas)
    state = pacer.state()
    assert state.calls == 600
    assert state.spend_usd == pytest.approx(0.6)
    assert state.alpha == pytest.approx(0.5, abs=1e-9)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of usd_per_1k_calls or usd_per_hour"),
        ({"usd_per_1k_calls": 1.0, "usd_per_hour": 1.0}, "exactly one"),
        ({"usd_per_1k_calls": 0.0}, "usd_per_1k_calls must be a positive finite number"),
        ({"usd_per_hour": math.inf}, "usd_per_hour must be a positive finite number"),
        ({"usd_per_1k_calls": True}, "usd_per_1k_calls must be"),
        ({"usd_per_1k_calls": 1.0, "min_alpha": 0.5, "max_alpha": 0.5}, "min_alpha < max_alpha"),
        ({"usd_per_1k_calls": 1.0, "max_alpha": 1.5}, "max_alpha=1.5"),
        ({"usd_per_1k_calls": 1.0, "min_alpha": 0.3, "initial_alpha": 0.1}, "initial_alpha"),
        ({"usd_per_1k_calls": 1.0, "window_seconds": 60}, "give window_calls"),
        ({"usd_per_hour": 1.0, "window_calls": 50}, "give window_seconds"),
        ({"usd_per_1k_calls": 1.0, "window_calls": 0}, "window_calls must be a positive"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SpendPacer(**kwargs)


@pytest.mark.parametrize("cost", [-0.01, math.inf])
def test_impossible_costs_are_refused_and_not_recorded(cost: float) -> None:
    pacer = SpendPacer(usd_per_1k_calls=1.0, initial_alpha=0.5)
    with pytest.raises(ValueError, match="cost_usd must be a finite USD amount >= 0"):
        pacer.record(cost)
    state = pacer.state()
    assert (state.calls, state.spend_usd, state.alpha) == (0, 0.0, 0.5)


def test_repr_names_the_target() -> None:
    assert repr(SpendPacer(usd_per_hour=2.5)) == (
        "SpendPacer(usd_per_hour=2.5, min_alpha=0, max_alpha=1, window=600)"
    )


# ---------------------------------------------------------------- bootstrap and cost estimate


@pytest.mark.slow
def test_bootstrap_means_match_the_normal_approximation() -> None:
    rng = np.random.default_rng(7)
    values = rng.choice([0.0, 1.0], size=(1, 4000), p=[0.8, 0.2])
    means = bootstrap_means([values], n_resamples=4000, random_state=0)
    assert means.shape == (1, 4000)
    se = values.std() / math.sqrt(values.shape[1])
    assert means.mean() == pytest.approx(values.mean(), abs=0.1 * se)
    assert np.quantile(means, 0.9) == pytest.approx(values.mean() + 1.2816 * se, abs=0.1 * se)


def test_bootstrap_pools_seeds_and_resamples_points_together() -> None:
    constant = np.array([[1.0, 1.0, 1.0], [5.0, 5.0, 5.0]])
    means = bootstrap_means([constant, constant + 1], n_resamples=10)
    assert means.shape == (2, 20)
    assert sorted(set(means[0])) == [1.0, 2.0]
    spread = np.array([[0.0, 1.0, 2.0], [0.0, 10.0, 20.0]])
    means = bootstrap_means([spread], n_resamples=50)
    assert means[1] == pytest.approx(10 * means[0])  # the same queries for every point
    again = bootstrap_means([spread], n_resamples=50)
    assert np.array_equal(means, again)  # reproducible


@pytest.mark.parametrize(
    ("per_seed", "n_resamples", "match"),
    [
        ([np.ones((2, 5))], 0, "n_resamples must be a positive int"),
        ([np.ones((2, 5))], 2.5, "n_resamples must be a positive int"),
        ([np.ones((2, 5)), np.ones((2, 0))], 10, "a seed has no held-out queries"),
    ],
)
def test_bootstrap_refuses_what_it_cannot_resample(
    per_seed: list, n_resamples: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        bootstrap_means(per_seed, n_resamples=n_resamples)


def test_expected_call_cost() -> None:
    profile = {"input_usd_per_mtok": 2.0, "output_usd_per_mtok": 8.0}
    assert expected_call_cost(1500, profile, 0.004) == pytest.approx(1500 * 2e-6 + 0.004)
    assert expected_call_cost(0, profile, 0.0) == 0.0
    assert expected_call_cost(100, {"tool_calling": True}, 0.004) is None
    assert expected_call_cost(100, None, 0.004) is None
    with pytest.raises(ValueError, match="prompt_tokens"):
        expected_call_cost(-1, profile, 0.004)
    with pytest.raises(ValueError, match="expected_answer_cost"):
        expected_call_cost(10, profile, math.nan)
