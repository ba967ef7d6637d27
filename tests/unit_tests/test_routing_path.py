"""The one routing path: exclusions, cost caps, sticky models, pins and the pacer's alpha.

A router fitted on ``small.jsonl`` (three acme models, cheapest first: tiny, medium, large) with
hand-made keyword embeddings, and profiles written here, so every expected figure is computed
from the router's own decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_pacer import ScriptedPacer
from langchain_core.messages import HumanMessage, SystemMessage
from manual_clock import ManualClock

from langchain_avengers import ClusterRouter
from langchain_avengers.chat_models.costs import format_usd
from langchain_avengers.chat_models.routing import (
    NoCapableModelError,
    OverRunBudgetError,
    RoutingPath,
    Sticky,
)
from langchain_avengers.policies.pacing import AlphaSource, expected_call_cost
from langchain_avengers.policies.pins import InMemoryPinStore, Pinning
from langchain_avengers.policies.routing_text import routing_text

TINY, MEDIUM, LARGE = "acme/tiny", "acme/medium", "acme/large"
QUERY = "Write a Python function that reverses a list."
PRICES = {TINY: 0.1, MEDIUM: 3.0, LARGE: 60.0}


@pytest.fixture
def router(small_jsonl: Path, keyword_embeddings: Any) -> ClusterRouter:
    return ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings).fit(
        small_jsonl
    )


def profiles(**changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    base = {
        m: {"tool_calling": True, "tool_choice": True, "input_usd_per_mtok": p}
        for m, p in PRICES.items()
    }
    for model, change in changes.items():
        base[model.replace("_", "/", 1)] = {**base[model.replace("_", "/", 1)], **change}
    return base


def path(router: ClusterRouter, **kwargs: Any) -> RoutingPath:
    settings: dict[str, Any] = {"profiles": profiles(), "pool": tuple(router.models_)}
    return RoutingPath(router=router, **{**settings, **kwargs})


def ask(text: str = QUERY) -> list[Any]:
    return [HumanMessage(text)]


def expected_costs(router: ClusterRouter, p: RoutingPath, call: Any) -> dict[str, float]:
    decision = router.route(call.text, call.alpha, allowed_models=call.usable)
    return {
        c.model: expected_call_cost(call.tokens, p.profiles[c.model], c.expected_cost)
        for c in decision.candidates
    }


# ---------------------------------------------------------------------------- exclusions


def test_profiles_exclude_before_routing(router: ClusterRouter) -> None:
    p = path(router, profiles=profiles(acme_tiny={"tool_calling": False}))
    call = p.call(ask(), needs={"tool_calling"})
    assert call.excluded == {TINY: "its profile says no tool_calling support"}
    assert TINY not in p.route(call).order


def test_a_bare_structured_schema_takes_either_way(router: ClusterRouter) -> None:
    either = "structured_output_or_forced_tool"
    p = path(
        router,
        profiles=profiles(
            acme_tiny={"tool_calling": False, "structured_output": True},
            acme_medium={"tool_choice": False, "structured_output": False},
        ),
    )
    call = p.call(ask(), needs={either})
    assert set(call.excluded) == {MEDIUM}
    assert "tool_choice" in call.excluded[MEDIUM]


def test_no_capable_model_names_every_exclusion(router: ClusterRouter) -> None:
    no_tools = {"tool_calling": False}
    p = path(
        router, profiles=profiles(acme_tiny=no_tools, acme_medium=no_tools, acme_large=no_tools)
    )
    with pytest.raises(NoCapableModelError, match=r"needs \['tool_calling'\].*acme/large \(its"):
        p.call(ask(), needs={"tool_calling"})


# ---------------------------------------------------------------------------- cost caps


def test_cost_cap_excludes_dear_models_and_routes_among_the_rest(router: ClusterRouter) -> None:
    p = path(router)
    free = p.call(ask(), options={"alpha": 1.0})
    costs = expected_costs(router, p, free)
    assert costs[LARGE] > costs[MEDIUM] > costs[TINY]
    cap = (costs[MEDIUM] + costs[LARGE]) / 2
    plan = p.route(p.call(ask(), options={"alpha": 1.0, "max_cost_per_call": cap}))
    among_rest = router.route(free.text, 1.0, allowed_models=[TINY, MEDIUM])
    assert plan.order == [c.model for c in among_rest.candidates]
    assert plan.summary["over_cost_cap"] == {LARGE: pytest.approx(costs[LARGE])}
    assert plan.summary["max_cost_per_call"] == cap
    assert plan.summary["excluded"][LARGE].startswith(
        f"expected cost {format_usd(costs[LARGE])} exceeds"
    )
    shown = {c["model"]: c["expected_call_cost"] for c in plan.summary["candidates"]}
    assert shown == {m: pytest.approx(costs[m]) for m in (TINY, MEDIUM)}
    assert plan.run_metadata()["avengers_over_cost_cap"] == plan.summary["over_cost_cap"]


def test_the_expected_cost_is_prompt_tokens_at_list_price_plus_calibration_cost(
    router: ClusterRouter,
) -> None:
    p = path(router)
    call = p.call(ask("Write a Python function that sorts a list. " * 50))
    decision = router.route(call.text, call.alpha, allowed_models=call.usable)
    large = next(c for c in decision.candidates if c.model == LARGE)
    assert expected_call_cost(call.tokens, {"input_usd_per_mtok": 60.0}, large.expected_cost) == (
        pytest.approx(call.tokens * 60.0 / 1e6 + large.expected_cost)
    )
    assert expected_call_cost(call.tokens, {}, large.expected_cost) is None


def test_a_cap_no_model_meets_fails_before_any_request(router: ClusterRouter) -> None:
    p = path(router, max_cost_per_call=1e-9)
    with pytest.raises(NoCapableModelError, match=r"max_cost_per_call \$0\.000000001 .*acme/tiny"):
        p.route(p.call(ask()))


def test_a_model_without_input_price_cannot_be_bounded(router: ClusterRouter) -> None:
    unpriced = profiles()
    del unpriced[LARGE]["input_usd_per_mtok"]
    p = path(router, profiles=unpriced, max_cost_per_call=1.0)
    plan = p.route(p.call(ask(), options={"alpha": 1.0}))
    assert plan.summary["over_cost_cap"] == {LARGE: None}
    assert "cannot be bounded" in plan.summary["excluded"][LARGE]


def test_the_per_call_cap_overrides_the_default(router: ClusterRouter) -> None:
    p = path(router, max_cost_per_call=1e-9)
    plan = p.route(p.call(ask(), options={"max_cost_per_call": 10.0}))
    assert plan.summary["over_cost_cap"] == {}
    with pytest.raises(ValueError, match=r"max_cost_per_call: expected a number of USD > 0"):
        p.call(ask(), options={"max_cost_per_call": -1})


def test_run_budget_left_is_a_cap_and_says_so(router: ClusterRouter) -> None:
    p = path(router)
    call = p.call(ask(), options={"alpha": 1.0})
    costs = expected_costs(router, p, call)
    left = (costs[TINY] + costs[MEDIUM]) / 2
    plan = p.route(p.call(ask(), options={"alpha": 1.0}, run_left=(left, 1.0)))
    assert plan.order == [TINY]
    assert plan.summary["excluded"][MEDIUM].endswith("left of max_run_cost $1")
    with pytest.raises(OverRunBudgetError) as raised:
        p.route(p.call(ask(), run_left=(costs[TINY] / 2, 1.0)))
    assert raised.value.expected_costs == {m: pytest.approx(c) for m, c in costs.items()}
    tighter = p.call(ask(), options={"max_cost_per_call": left / 10}, run_left=(left, 1.0))
    assert tighter.cost_cap is not None
    assert tighter.cost_cap.kind == "call"


# ---------------------------------------------------------------------------- sticky models


def test_a_sticky_model_goes_first_while_it_can_serve(router: ClusterRouter) -> None:
    p = path(router)
    routed = p.route(p.call(ask(), options={"alpha": 0.0}))
    other = next(m for m in router.models_ if m != routed.first_model)
    plan = p.route(p.call(ask(), options={"alpha": 0.0}, sticky=[Sticky("turn", other)]))
    assert plan.order[0] == other
    assert sorted(plan.order) == sorted(routed.order)
    assert plan.summary["pinned"] == {"source": "turn", "model": other}
    assert plan.run_metadata()["avengers_pinned"] == "turn"


def test_a_sticky_model_that_cannot_serve_is_broken_with_its_reason(
    router: ClusterRouter,
) -> None:
    p = path(router, profiles=profiles(acme_large={"tool_calling": False}))
    plan = p.route(p.call(ask(), needs={"tool_calling"}, sticky=[Sticky("turn", LARGE)]))
    assert plan.first_model != LARGE
    assert plan.summary["pinned"] is None
    assert plan.summary["pin_broken"] == [
        {"source": "turn", "model": LARGE, "reason": "its profile says no tool_calling support"}
    ]
    restricted = p.route(
        p.call(ask(), options={"models": [TINY, MEDIUM]}, sticky=[Sticky("turn", LARGE)])
    )
    assert restricted.summary["pin_broken"][0]["reason"].startswith("not among the models")
    assert p.route(p.call(ask(), sticky=[Sticky("turn", "acme/gone")])).summary["pin_broken"][0][
        "reason"
    ] == ("not in this router's pool")


def test_model_pin_wins_over_sticky_models(router: ClusterRouter) -> None:
    p = path(router)
    plan = p.route(p.call(ask(), options={"model": MEDIUM}, sticky=[Sticky("turn", LARGE)]))
    assert plan.order == [MEDIUM]
    assert plan.summary["routed"] is False
    assert plan.summary["pinned"] is None


# ---------------------------------------------------------------------------- alpha


def test_alpha_comes_from_the_call_then_bound_then_pacer_then_default(
    router: ClusterRouter,
) -> None:
    pacer = ScriptedPacer([0.0])
    assert isinstance(pacer, AlphaSource)
    paced = path(router, pacer=pacer, alpha=0.7)
    assert (paced.call(ask()).alpha, paced.call(ask()).alpha_source) == (0.0, "pacer")
    call = paced.call(ask(), options={"alpha": 0.4})
    assert (call.alpha, call.alpha_source) == (0.4, "call")
    bound = path(router, pacer=pacer, alpha=0.7, alpha_is_bound=True)
    assert (bound.call(ask()).alpha, bound.call(ask()).alpha_source) == (0.7, "bound")
    assert path(router).call(ask()).alpha_source == "default"
    assert pacer.asked == 2, "the pacer is asked only when nothing else sets alpha"


def test_a_pacer_alpha_out_of_range_is_named(router: ClusterRouter) -> None:
    with pytest.raises(ValueError, match=r"alpha: expected a number in \[0, 1\].*None"):
        path(router).call(ask(), options={"alpha": None})
    with pytest.raises(ValueError, match=r"pacer\.alpha\(\) must be in \[0, 1\], got 1\.5"):
        path(router, pacer=ScriptedPacer([1.5])).call(ask())


# ---------------------------------------------------------------------------- pins


def test_a_conversation_stays_on_its_first_model_until_the_pin_lapses(
    router: ClusterRouter,
) -> None:
    clock = ManualClock(1_000.0)
    store = InMemoryPinStore(clock=clock)
    p = path(router, pinning=Pinning(store, ttl_s=60.0, clock=clock))
    first = p.route(p.call(ask(), options={"alpha": 1.0, "session_id": "c1"}))
    assert first.summary["pinned"] is None
    cheap = p.route(p.call(ask(), options={"alpha": 0.0}))
    assert cheap.first_model != first.first_model, "alpha 0 routes elsewhere when not pinned"
    clock.now += 59.0
    again = p.route(p.call(ask(), options={"alpha": 0.0, "session_id": "c1"}))
    assert again.first_model == first.first_model
    assert again.summary["pinned"] == {"source": "conversation", "model": first.first_model}
    clock.now += 59.0  # the last call pushed the expiry: still pinned
    assert p.route(p.call(ask(), options={"alpha": 0.0, "session_id": "c1"})).summary["pinned"]
    clock.now += 61.0
    lapsed = p.route(p.call(ask(), options={"alpha": 0.0, "session_id": "c1"}))
    assert lapsed.summary["pinned"] is None
    assert lapsed.first_model == cheap.first_model


def test_a_broken_pin_moves_to_the_new_model(router: ClusterRouter) -> None:
    store = InMemoryPinStore()
    p = path(
        router,
        profiles=profiles(acme_large={"tool_calling": False}),
        pinning=Pinning(store, ttl_s=60.0),
    )
    p.route(p.call(ask(), options={"alpha": 1.0, "model": LARGE, "session_id": "c"}))
    assert store.get("c") is None, "a model= call does not pin the conversation"
    first = p.route(p.call(ask(), options={"alpha": 1.0, "session_id": "c"}))
    assert first.first_model == LARGE
    broken = p.route(p.call(ask(), options={"session_id": "c"}, needs={"tool_calling"}))
    assert broken.summary["pin_broken"][0]["source"] == "conversation"
    assert broken.run_metadata()["avengers_pin_broken"] == [
        f"conversation pin on {LARGE}: its profile says no tool_calling support"
    ]
    pin = store.get("c")
    assert pin is not None
    assert pin.model == broken.first_model


async def test_aroute_agrees_with_route_and_keeps_pins(router: ClusterRouter) -> None:
    p = path(router, pinning=Pinning(InMemoryPinStore(), ttl_s=60.0))
    messages = [SystemMessage("Be brief."), HumanMessage(QUERY)]
    sync = p.route(p.call(messages, options={"alpha": 0.3}))
    sent = await p.aroute(p.call(messages, options={"alpha": 0.3, "session_id": "a"}))
    assert sent.order == sync.order
    pinned = await p.aroute(p.call(messages, options={"alpha": 1.0, "session_id": "a"}))
    assert pinned.first_model == sync.first_model


def test_conversation_routing_text_is_what_the_router_reads(router: ClusterRouter) -> None:
    p = path(router, routing_text="conversation", routing_text_chars=500)
    messages = [SystemMessage("You write Python code."), HumanMessage(QUERY)]
    assert p.call(messages).text == routing_text(messages, "conversation", 500)
    assert path(router).call(messages).text == QUERY
