"""The one routing path of the chat model and the agent middleware.

A pool of model ids with profiles, a fitted router and one call (its messages, tools, needs
and options) give the models that can serve the call, in the order to try them:

1. models whose profile rules out a needed capability, input kind or the context length are
   excluded (:meth:`RoutingPath.call`, before anything is embedded);
2. the router ranks the rest for the call's routing text at the call's alpha (explicit, else
   the pacer's, else the default);
3. with a cost cap (``max_cost_per_call``, or what is left of an agent run's budget), models
   whose expected cost for the call exceeds it are excluded and the rest ranked again;
4. a sticky model (the agent turn's model, the conversation's pin) goes first while it can
   still serve the call; otherwise the stickiness is broken and the reason reported; the
   conversation's pin is then claimed atomically (a call that loses the claim to a concurrent
   one follows the pin that won); 5. exploration may pick another candidate (:mod:`.exploration`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from langchain_core.messages import BaseMessage

from langchain_avengers.chat_models.attempts import Plan
from langchain_avengers.chat_models.costs import format_usd
from langchain_avengers.chat_models.exploration import Exploration, exploration_report, explore
from langchain_avengers.chat_models.options import (
    ROUTING_OPTIONS,
    RoutingOptions,
    check_alpha,
    check_call_keywords,
    check_max_cost,
    check_models,
    check_nearest_clusters,
    check_pinned_model,
    check_session_id,
    check_top_p,
)
from langchain_avengers.chat_models.runs import THREAD_KEY
from langchain_avengers.openrouter.messages import check_sendable, estimate_tokens, media_inputs
from langchain_avengers.policies.pacing import AlphaSource, expected_call_cost
from langchain_avengers.policies.pins import MAX_CLAIMS, Pin, Pinning
from langchain_avengers.policies.routing_text import (
    DEFAULT_ROUTING_TEXT_CHARS,
    RoutingTextMode,
    routing_text,
)
from langchain_avengers.routing.router import ClusterRouter, RoutingDecision

__all__ = [
    "AUTO_STRUCTURED",
    "Call",
    "NoCapableModelError",
    "OverRunBudgetError",
    "RoutingPath",
    "Sticky",
    "required_capabilities",
]

CHAT_OPTIONS = ("alpha", "nearest_clusters", "models", "model", "max_cost_per_call")
"""Per-call routing options of a chat model call (``session_id`` aside)."""
AUTO_STRUCTURED = "structured_output_or_forced_tool"
"""A need met by ``structured_output`` or by ``tool_calling`` with ``tool_choice``: an agent's
``response_format`` given as a bare schema, which LangChain serves either way."""


class NoCapableModelError(ValueError):
    """No model of the pool can serve a call (raised before any HTTP request)."""


class OverRunBudgetError(NoCapableModelError):
    """Every model that could serve a call is expected to cost more than its run has left."""

    def __init__(self, message: str, expected_costs: Mapping[str, float | None]) -> None:
        super().__init__(message)
        self.expected_costs = dict(expected_costs)
        """Each capable model's expected USD for the call (``None``: no input price)."""


@dataclass(frozen=True)
class Sticky:
    """A model a call should stay on while it can serve it, and why."""

    source: Literal["turn", "conversation"]
    model: str


@dataclass(frozen=True)
class CostCap:
    """The most USD one call may be expected to cost, and which budget set it."""

    usd: float
    kind: Literal["call", "run"]
    run_cap: float | None = None
    """``max_run_cost`` when ``kind == "run"``."""

    def reason(self, cost: float) -> str:
        """Why a model expected to cost ``cost`` is excluded."""
        if self.kind == "call":
            return (
                f"expected cost {format_usd(cost)} exceeds max_cost_per_call {format_usd(self.usd)}"
            )
        run_cap = self.usd if self.run_cap is None else self.run_cap
        return (
            f"expected cost {format_usd(cost)} exceeds the {format_usd(self.usd)} left of "
            f"max_run_cost {format_usd(run_cap)}"
        )


@dataclass(frozen=True)
class Call:
    """One call as the router will see it, checked before anything is embedded."""

    text: str
    """The text routing reads."""
    alpha: float
    alpha_source: str
    """``"call"`` (given with the call), ``"bound"`` (``bind``/constructor), ``"pacer"`` or
    ``"default"``."""
    nearest_clusters: int | None
    needs: frozenset[str]
    tokens: int
    usable: list[str]
    """Candidates left after capability, input-kind and context exclusions."""
    excluded: dict[str, str]
    pinned: str | None
    """The model named with ``model=`` (routing then only reports)."""
    allowed: list[str]
    """The candidates before exclusions (the pool, or the call's ``models``)."""
    cost_cap: CostCap | None = None
    session: str | None = None
    """The conversation key, when pins are kept."""
    sticky: tuple[Sticky, ...] = ()


@dataclass(frozen=True)
class RoutingPath:
    """A pool, its profiles, a fitted router and default options: the routing of every call.

    Immutable and cheap to build; the chat model builds one per call from its fields and the
    middleware keeps one.
    """

    router: ClusterRouter
    profiles: Mapping[str, Mapping[str, Any]]
    """Resolved profile per pool model (capabilities, ``max_input_tokens``, list prices)."""
    pool: tuple[str, ...]
    alpha: float = 0.5
    alpha_is_bound: bool = False
    """Whether ``alpha`` was given explicitly (then it wins over the pacer)."""
    nearest_clusters: int | None = None
    models: tuple[str, ...] | None = None
    max_cost_per_call: float | None = None
    routing_text: RoutingTextMode = "latest_human"
    routing_text_chars: int = DEFAULT_ROUTING_TEXT_CHARS
    pacer: AlphaSource | None = None
    pinning: Pinning | None = None
    max_fallbacks: int = 2
    max_retries: int = 1
    profile_hint: str = "pass profiles={...} or run `avengers catalog refresh`"
    """How to give a model a profile, said when a model has none."""
    exploration: Exploration = field(default_factory=Exploration)
    """Step 5: the rate at which calls go to a uniformly drawn candidate, and its draws."""

    # ------------------------------------------------------------------ checks

    def call(
        self,
        messages: Sequence[BaseMessage],
        *,
        options: Mapping[str, Any] | None = None,
        needs: frozenset[str] | set[str] = frozenset(),
        tools: list[dict[str, Any]] | None = None,
        sticky: Sequence[Sticky] = (),
        run_left: tuple[float, float] | None = None,
    ) -> Call:
        """Check one call's options and rule out models, before anything is embedded.

        Args:
            messages: The messages sent to the model (system prompt included).
            options: Per-call options: ``alpha``, ``nearest_clusters``, ``models``, ``model`` (pin
            one
                model), ``max_cost_per_call``, ``session_id`` (the conversation key).
            needs: Profile flags the call needs (tools, structured output...); media inputs
                are added from the messages.
            tools: OpenAI tool schemas, for the prompt-token estimate.
            sticky: Models to stay on, first first, while they can serve.
            run_left: ``(USD left, max_run_cost)`` of an agent run's budget.

        Raises:
            ValueError: a bad option (named), an empty message list, or messages or tools
                no provider can be sent (see
                :func:`~langchain_avengers.openrouter.messages.check_sendable`).
            NoCapableModelError: no model can serve the call.
        """
        options = options or {}
        if not messages:
            msg = "messages: empty list; a call needs at least one message"
            raise ValueError(msg)
        check_sendable(messages, tools)
        alpha, alpha_source = self._alpha(options)
        nearest_clusters = check_nearest_clusters(
            options.get("nearest_clusters", self.nearest_clusters), self.router.n_clusters_
        )
        pinned = check_pinned_model(options["model"], self.pool) if "model" in options else None
        allowed = check_models(options.get("models", self.models), self.pool) or list(self.pool)
        candidates = [pinned] if pinned else allowed
        all_needs = frozenset(needs) | media_inputs(list(messages))
        tokens = estimate_tokens(list(messages), tools)
        excluded = {m: r for m in candidates if (r := self._exclusion(m, all_needs, tokens))}
        usable = [m for m in candidates if m not in excluded]
        if not usable:
            msg = (
                f"no model of the pool can serve this call: it needs "
                f"{sorted(all_needs) or 'nothing'} and ~{tokens} input tokens; excluded: "
                + "; ".join(f"{m} ({r})" for m, r in excluded.items())
            )
            raise NoCapableModelError(msg)
        session = options.get("session_id")
        return Call(
            text=routing_text(list(messages), self.routing_text, self.routing_text_chars),
            alpha=alpha,
            alpha_source=alpha_source,
            nearest_clusters=nearest_clusters,
            needs=all_needs,
            tokens=tokens,
            usable=usable,
            excluded=excluded,
            pinned=pinned,
            allowed=allowed,
            cost_cap=self._cost_cap(options, run_left),
            session=None if session is None else check_session_id(session),
            sticky=tuple(sticky),
        )

    def chat_call(self, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]) -> Call:
        """:meth:`call` from a chat model call's keyword arguments (``invoke``, ``bind``).

        Raises:
            ValueError: ``session_id`` given while conversations are not pinned, or any
                refusal of :meth:`call`.
        """
        check_call_keywords(kwargs, (*CHAT_OPTIONS, "session_id"), "invoke")
        check_top_p(kwargs.get("top_p"))
        given = {k: kwargs[k] for k in ROUTING_OPTIONS if k in kwargs}
        options: dict[str, Any] = RoutingOptions.checked(
            given, pool=self.pool, n_clusters=self.router.n_clusters_, where="invoke"
        ).given()
        if "model" in kwargs:
            options["model"] = kwargs["model"]
        if "session_id" in kwargs and self.pinning is None:
            msg = (
                "session_id: conversations are not pinned; build the model with "
                "pin_conversations=True to keep a conversation on one model"
            )
            raise ValueError(msg)
        session = kwargs.get("session_id", kwargs.get(THREAD_KEY))
        if self.pinning is not None and session is not None:
            options["session_id"] = session
        needs = required_capabilities(kwargs)
        return self.call(messages, options=options, needs=needs, tools=kwargs.get("tools"))

    def _alpha(self, options: Mapping[str, Any]) -> tuple[float, str]:
        if "alpha" in options:
            return check_alpha(options["alpha"]), "call"
        if self.alpha_is_bound or self.pacer is None:
            return self.alpha, "bound" if self.alpha_is_bound else "default"
        return check_alpha(self.pacer.alpha(), "pacer.alpha()"), "pacer"

    def _cost_cap(
        self, options: Mapping[str, Any], run_left: tuple[float, float] | None
    ) -> CostCap | None:
        per_call = check_max_cost(options.get("max_cost_per_call", self.max_cost_per_call))
        caps = []
        if per_call is not None:
            caps.append(CostCap(per_call, "call"))
        if run_left is not None:
            caps.append(CostCap(max(run_left[0], 0.0), "run", run_left[1]))
        return min(caps, key=lambda c: c.usd) if caps else None

    def _exclusion(self, model: str, needs: frozenset[str], tokens: int) -> str | None:
        """Why ``model`` cannot serve the call, or None."""
        profile = self.profiles.get(model)
        if profile is None:
            if needs:
                shown = ", ".join(sorted(_as_flags(needs)))
                return (
                    f"no profile for this model, so its {shown} support is unknown "
                    f"({self.profile_hint})"
                )
            return None
        wanted = set(needs - {AUTO_STRUCTURED})
        if AUTO_STRUCTURED in needs and not profile.get("structured_output"):
            wanted |= {"tool_calling", "tool_choice"}
        denied = sorted(c for c in wanted if c in profile and not profile[c])
        if denied:
            return "its profile says no " + ", ".join(denied) + " support"
        unstated = sorted(c for c in wanted if c not in profile)
        if unstated:
            return "its profile does not state " + ", ".join(unstated) + " support"
        limit = profile.get("max_input_tokens")
        if limit is not None and tokens > limit:
            return f"~{tokens} input tokens exceed max_input_tokens={limit}"
        return None

    # ------------------------------------------------------------------ routing

    def route(self, call: Call) -> Plan:
        """The plan of one call: route, apply the cost cap and stickiness, move the pin."""
        pins = self._pins(call)
        pin = pins[0].lookup(pins[1]) if pins else None
        decision = self._decide(call, call.usable)
        over = self._over_cap(call, decision)
        if over:
            decision = self._decide(call, [m for m in call.usable if m not in over])
        plan = self._plan(call, decision, over, pin)
        if pins:
            for _ in range(MAX_CLAIMS):
                stood = pins[0].claim(pins[1], plan.first_model, pin)
                if stood is not None and stood.model == plan.first_model:
                    break
                pin = stood  # another call pinned the conversation first: follow its pin
                plan = self._plan(call, decision, over, pin)
        return self._noting_fallbacks(plan)

    async def aroute(self, call: Call) -> Plan:
        """Async :meth:`route`: the embedder and the pin store do not block the event loop."""
        pins = self._pins(call)
        pin = await pins[0].alookup(pins[1]) if pins else None
        decision = await self._adecide(call, call.usable)
        over = self._over_cap(call, decision)
        if over:
            decision = await self._adecide(call, [m for m in call.usable if m not in over])
        plan = self._plan(call, decision, over, pin)
        if pins:
            for _ in range(MAX_CLAIMS):
                stood = await pins[0].aclaim(pins[1], plan.first_model, pin)
                if stood is not None and stood.model == plan.first_model:
                    break
                pin = stood
                plan = self._plan(call, decision, over, pin)
        return self._noting_fallbacks(plan)

    def _noting_fallbacks(self, plan: Plan) -> Plan:
        """Say in the answer's metadata which shared state is down (then kept in-process)."""
        down = {}
        for name, holder in (("pins", self.pinning), ("pacer", self.pacer)):
            reason = getattr(holder, "fallback_reason", None)
            if callable(reason) and (why := reason()):
                down[name] = why
        if down:
            plan.summary["shared_state_down"] = down
        return plan

    def _pins(self, call: Call) -> tuple[Pinning, str] | None:
        """The pins and conversation key this call reads and moves (never with ``model=``)."""
        if self.pinning is None or call.session is None or call.pinned is not None:
            return None
        return self.pinning, call.session

    def _decide(self, call: Call, allowed: list[str]) -> RoutingDecision:
        return self.router.route(
            call.text, call.alpha, allowed_models=allowed, nearest_clusters=call.nearest_clusters
        )

    async def _adecide(self, call: Call, allowed: list[str]) -> RoutingDecision:
        return await self.router.aroute(
            call.text, call.alpha, allowed_models=allowed, nearest_clusters=call.nearest_clusters
        )

    def _over_cap(self, call: Call, decision: RoutingDecision) -> dict[str, float | None]:
        """Candidates whose expected cost exceeds the call's cap (``None``: no input price).

        Raises:
            OverRunBudgetError: every candidate exceeds what an agent run has left.
            NoCapableModelError: every candidate exceeds ``max_cost_per_call``.
        """
        cap = call.cost_cap
        if cap is None:
            return {}
        costs = self._expected_costs(call, decision)
        over = {m: c for m, c in costs.items() if c is None or c > cap.usd}
        if len(over) < len(costs):
            return over
        listed = "; ".join(f"{m} ({_cost_reason(cap, c)})" for m, c in over.items())
        if cap.kind == "run":
            msg = f"no model fits what is left of the run's budget: {listed}"
            raise OverRunBudgetError(msg, over)
        msg = (
            f"no model of the pool is expected to cost at most max_cost_per_call "
            f"{format_usd(cap.usd)} for this call (~{call.tokens} input tokens): {listed}; raise "
            "the cap or shorten the call"
        )
        raise NoCapableModelError(msg)

    def _expected_costs(self, call: Call, decision: RoutingDecision) -> dict[str, float | None]:
        return {
            c.model: expected_call_cost(call.tokens, self.profiles.get(c.model), c.expected_cost)
            for c in decision.candidates
        }

    def _plan(
        self,
        call: Call,
        decision: RoutingDecision,
        over: Mapping[str, float | None],
        pin: Pin | None,
    ) -> Plan:
        """The order to try models in, and the decision as the answer's metadata reports it."""
        ranked = [c.model for c in decision.candidates]
        wanted = list(call.sticky)
        if pin is not None:
            wanted.append(Sticky("conversation", pin.model))
        kept, broken = None, []
        for sticky in wanted if call.pinned is None else []:
            if sticky.model in ranked:
                kept = sticky
                break
            reason = self._why_not(call, sticky.model, over)
            broken.append({"source": sticky.source, "model": sticky.model, "reason": reason})
        propensity: float | None = None
        if call.pinned is not None:
            order = [call.pinned]
        elif kept is not None:
            order = [kept.model, *(m for m in ranked if m != kept.model)]
        else:
            order, propensity = explore(ranked, self.exploration)
        candidates = [asdict(c) for c in decision.candidates]
        if call.cost_cap is not None:
            costs = self._expected_costs(call, decision)
            for candidate in candidates:
                candidate["expected_call_cost"] = costs[candidate["model"]]
        cap = call.cost_cap
        excluded = dict(call.excluded)
        excluded.update({m: _cost_reason(cap, c) for m, c in over.items() if cap is not None})
        summary: dict[str, Any] = {
            "alpha": call.alpha,
            "alpha_source": call.alpha_source,
            "nearest_clusters": decision.nearest_clusters,
            "routed": call.pinned is None,
            "required_capabilities": sorted(_as_flags(call.needs)),
            "estimated_input_tokens": call.tokens,
            "excluded": excluded,
            "max_cost_per_call": None if cap is None else cap.usd,
            "over_cost_cap": dict(over),
            "pinned": None if kept is None else asdict(kept),
            "pin_broken": broken,
            "candidates": candidates,
            "clusters": [asdict(c) for c in decision.clusters],
            **exploration_report(self.exploration, propensity, order[0], ranked[0], self.router),
        }
        return Plan(
            order=order,
            summary=summary,
            candidates={c["model"]: c for c in candidates},
            max_fallbacks=self.max_fallbacks,
            max_retries=self.max_retries,
        )

    def _why_not(self, call: Call, model: str, over: Mapping[str, float | None]) -> str:
        """Why a sticky model cannot serve this call."""
        if model in call.excluded:
            return call.excluded[model]
        if model in over and call.cost_cap is not None:
            return _cost_reason(call.cost_cap, over[model])
        if model not in self.pool:
            return "not in this router's pool"
        if model not in call.allowed:
            return "not among the models allowed for this call (models=...)"
        return "not a candidate for this call"


def _cost_reason(cap: CostCap | None, cost: float | None) -> str:
    if cap is None:
        return ""
    if cost is None:
        return "no input list price in its profile, so its expected cost cannot be bounded"
    return cap.reason(cost)


def _as_flags(needs: frozenset[str]) -> set[str]:
    """Needs as profile flags people know (the either-or need shown as its two ways)."""
    flags = set(needs - {AUTO_STRUCTURED})
    if AUTO_STRUCTURED in needs:
        flags.add("structured_output (or tool_calling + tool_choice)")
    return flags


def required_capabilities(kwargs: Mapping[str, Any]) -> set[str]:
    """Profile flags a chat call's arguments need: tools, forced tool choice, structured output."""
    needs = set(kwargs.get("avengers_capabilities", ()))
    if kwargs.get("tools"):
        needs.add("tool_calling")
        if kwargs.get("tool_choice") not in (None, "auto", "none"):
            needs.add("tool_choice")
    if kwargs.get("response_format") is not None:
        needs.add("structured_output")
    return needs
