"""What one answer cost, and how it is reported to LangChain and LangSmith.

The figure is OpenRouter's billed ``usage.cost`` when it is a plausible number (the rule of
:mod:`langchain_avengers.openrouter.billing`), else tokens times the model's list prices.
It goes into ``usage_metadata`` as LangSmith's
``input_cost``/``output_cost``/``total_cost`` (USD; LangSmith then shows it as the run's
cost instead of guessing a price from the model name) and into
``response_metadata["cost"]``, as ``langchain-openrouter``'s ``ChatOpenRouter`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from langchain_core.messages import AIMessage, UsageMetadata

from langchain_avengers._utils.money import format_usd as format_usd
from langchain_avengers.openrouter.billing import billed_cost

__all__ = ["AnswerCost", "add_usage", "annotate_answer", "answer_cost", "billed_cost"]

logger = logging.getLogger(__name__)

CostSource = Literal["openrouter", "list_prices"]


@dataclass(frozen=True)
class AnswerCost:
    """USD of one answer, split into input and output when list prices allow it."""

    total: float | None
    input: float | None = None
    output: float | None = None
    source: CostSource | None = None
    """``"openrouter"``: the billed ``usage.cost``; ``"list_prices"``: tokens times the
    catalog's prices; ``None``: unknown."""
    note: str | None = None
    """Why OpenRouter's billed figure was not used, when it was refused."""

    def metadata(self) -> dict[str, Any]:
        """The cost keys of ``response_metadata["avengers"]``."""
        return {
            "actual_cost": self.total,
            "input_cost": self.input,
            "output_cost": self.output,
            "cost_source": self.source,
            "cost_note": self.note,
        }

    @classmethod
    def from_metadata(cls, avengers: dict[str, Any]) -> AnswerCost:
        """The cost :meth:`metadata` describes (a merged stream's ``avengers`` metadata)."""
        return cls(
            avengers.get("actual_cost"),
            avengers.get("input_cost"),
            avengers.get("output_cost"),
            avengers.get("cost_source"),
            avengers.get("cost_note"),
        )

    def usage_metadata(self, usage: UsageMetadata | None) -> UsageMetadata | None:
        """``usage`` with LangSmith's cost fields added (USD); unchanged if the cost is unknown."""
        if usage is None or self.total is None:
            return usage
        with_costs: dict[str, Any] = dict(usage)
        if self.input is not None and self.output is not None:
            with_costs["input_cost"] = self.input
            with_costs["output_cost"] = self.output
        with_costs["total_cost"] = self.total
        return UsageMetadata(**with_costs)  # type: ignore[typeddict-item]


def answer_cost(
    usage: UsageMetadata | None, billed: object, profile: Mapping[str, Any] | None
) -> AnswerCost:
    """The cost of one answer from its usage, OpenRouter's billed figure and list prices.

    Args:
        usage: The answer's token usage, if reported.
        billed: OpenRouter's ``usage.cost`` as received (any JSON value, or None).
        profile: The model's profile, for ``input_usd_per_mtok``/``output_usd_per_mtok``.
    """
    tokens_in = usage["input_tokens"] if usage else 0
    tokens_out = usage["output_tokens"] if usage else 0
    listed = _list_prices(profile, tokens_in, tokens_out) if usage else None
    cost, refused = billed_cost(billed, tokens_in + tokens_out)
    if cost is not None:
        split = _split(cost, listed)
        return AnswerCost(cost, *split, source="openrouter")
    if refused:
        logger.warning("ignoring OpenRouter's usage.cost: %s; using list prices", refused)
    if listed is None:
        return AnswerCost(None, note=refused)
    return AnswerCost(sum(listed), *listed, source="list_prices", note=refused)


def annotate_answer(
    message: AIMessage,
    model: str,
    report: Mapping[str, Any],
    cost: AnswerCost,
    provider_model: str | None = None,
) -> dict[str, Any]:
    """Name the routed model on an answer and add the decision and the cost.

    ``provider_model`` is the provider's model id when the answer's metadata has none.

    ``response_metadata["model_name"]`` becomes the routed id (the provider's own id moves to
    ``provider_model``), ``["avengers"]`` the decision with the cost fields, ``["cost"]`` the
    USD, and ``usage_metadata`` gets LangSmith's cost fields.

    Returns:
        The ``avengers`` metadata set on the answer.
    """
    avengers = {**report, **cost.metadata()}
    message.usage_metadata = cost.usage_metadata(message.usage_metadata)
    meta = message.response_metadata
    provider_model = meta.get("model_name") or provider_model
    if provider_model:
        meta["provider_model"] = provider_model
    meta.update(model_name=model, avengers=avengers)
    if cost.total is not None:
        meta["cost"] = cost.total
    return avengers


def _list_prices(
    profile: Mapping[str, Any] | None, tokens_in: int, tokens_out: int
) -> tuple[float, float] | None:
    """Input and output USD at list prices, or None when the profile has no prices."""
    if not profile:
        return None
    price_in, price_out = profile.get("input_usd_per_mtok"), profile.get("output_usd_per_mtok")
    if price_in is None or price_out is None:
        return None
    return tokens_in * price_in / 1e6, tokens_out * price_out / 1e6


def _split(total: float, listed: tuple[float, float] | None) -> tuple[float | None, float | None]:
    """Share a billed total between input and output in the proportion of list prices."""
    if listed is None or sum(listed) <= 0:
        return None, None
    share_in = total * listed[0] / sum(listed)
    return share_in, max(total - share_in, 0.0)


def add_usage(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> UsageMetadata:
    """Add two usage dictionaries key by key, ints and floats alike, nested dicts recursively.

    LangChain core's ``add_usage`` only adds ints and raises on the float cost fields
    (langchain-ai/langchain#36015). A key missing on one side counts as zero; a value that is
    not a number (or a dict) keeps the right-hand one.
    """
    return cast(UsageMetadata, _add(left or {}, right or {}))


def _add(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for key in dict.fromkeys([*left, *right]):
        a, b = left.get(key), right.get(key)
        if isinstance(a, Mapping) or isinstance(b, Mapping):
            total[key] = _add(
                a if isinstance(a, Mapping) else {}, b if isinstance(b, Mapping) else {}
            )
        elif _is_number(a or 0) and _is_number(b or 0):
            total[key] = (a or 0) + (b or 0)
        else:
            total[key] = b if b is not None else a
    return total


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
