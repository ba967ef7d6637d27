"""Cost of one answer, usage with costs, and adding usage up despite langchain-core's ints.

The first tests pin the langchain-core behaviour the package works around
(langchain-ai/langchain#36015, core 1.7.2 to 1.8.2): when they start failing, core adds
floats and the README's limitation paragraph can go.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManager, UsageMetadataCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import add_usage as core_add_usage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.outputs.chat_generation import merge_chat_generation_chunks

from langchain_avengers.callbacks import UsageCostCallbackHandler, get_usage_metadata_callback
from langchain_avengers.chat_models.costs import add_usage, answer_cost, billed_cost, format_usd
from langchain_avengers.chat_models.streaming import FirstChunk

PROFILE = {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 3.0}
TOKENS = {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}
COSTED = {**TOKENS, "input_cost": 0.001, "output_cost": 0.0015, "total_cost": 0.0025}


def chunks_with_costs_last(n: int) -> list[ChatGenerationChunk]:
    head = [ChatGenerationChunk(message=AIMessageChunk(content=str(i))) for i in range(n - 1)]
    last = ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=COSTED))
    return [*head, last]


def answer(model: str, usage: dict[str, Any]) -> LLMResult:
    message = AIMessage(content="x", usage_metadata=usage, response_metadata={"model_name": model})
    return LLMResult(generations=[[ChatGeneration(message=message)]])


# ---------------------------------------------------------------------------- core's limits


def test_core_add_usage_refuses_float_costs() -> None:
    with pytest.raises(ValueError, match="Unknown value types"):
        core_add_usage(COSTED, COSTED)  # type: ignore[arg-type]


def test_core_merge_of_three_chunks_refuses_one_costed_chunk() -> None:
    """Even one chunk with costs breaks ``first + [rest]``: the missing usage of the first
    two becomes integer zeros, to which floats cannot be added."""
    with pytest.raises(ValueError, match="Unknown value types"):
        merge_chat_generation_chunks(chunks_with_costs_last(3))


def test_core_usage_handler_stops_summing_at_the_second_answer() -> None:
    handler = UsageMetadataCallbackHandler()
    handler.on_llm_end(answer("m", COSTED))
    with pytest.raises(ValueError, match="Unknown value types"):
        handler.on_llm_end(answer("m", COSTED))


# ---------------------------------------------------------------------------- our way round


def test_first_chunk_puts_the_costs_in_the_merged_usage() -> None:
    """Streamed chunks carry integer usage and the cost in response_metadata; merging them
    from a FirstChunk (as LangChain does for its callbacks) yields usage with the costs."""
    head = [ChatGenerationChunk(message=AIMessageChunk(content=str(i))) for i in range(4)]
    cost = answer_cost(TOKENS, 0.004, PROFILE)  # type: ignore[arg-type]
    closing = AIMessageChunk(
        content="", usage_metadata=TOKENS, response_metadata={"avengers": cost.metadata()}
    )
    chunks = [FirstChunk(message=head[0].message), *head[1:], ChatGenerationChunk(message=closing)]
    merged = merge_chat_generation_chunks(chunks)
    assert type(merged) is ChatGenerationChunk
    assert merged is not None
    assert merged.message.content == "0123"
    assert merged.message.usage_metadata == cost.usage_metadata(TOKENS)  # type: ignore[arg-type]
    assert closing.usage_metadata == TOKENS, "the chunks themselves keep integer usage"
    plain = [ChatGenerationChunk(message=c.message) for c in chunks]
    assert merge_chat_generation_chunks(plain).message.usage_metadata == TOKENS  # type: ignore[union-attr]


def test_add_usage_adds_floats_ints_and_nested_details() -> None:
    left = {**COSTED, "input_token_details": {"cache_read": 2}}
    right = {**COSTED, "output_token_details": {"reasoning": 3}}
    total = add_usage(left, right)
    assert total["total_tokens"] == 3000
    assert total["total_cost"] == pytest.approx(0.005)
    assert total["input_token_details"] == {"cache_read": 2}
    assert total["output_token_details"] == {"reasoning": 3}
    assert add_usage(None, TOKENS) == TOKENS
    assert add_usage(TOKENS, COSTED)["input_cost"] == 0.001


def test_usage_cost_handler_sums_every_answer() -> None:
    handler = UsageCostCallbackHandler()
    for _ in range(3):
        handler.on_llm_end(answer("m", COSTED))
    handler.on_llm_end(answer("n", TOKENS))  # a model without known cost
    assert handler.usage_metadata["m"]["total_cost"] == pytest.approx(0.0075)
    assert handler.total_cost == pytest.approx(0.0075)
    assert handler.total_tokens == 6000
    assert isinstance(handler, UsageMetadataCallbackHandler)


def test_nested_usage_callbacks_each_see_their_calls_and_hooks_are_reused() -> None:
    from langchain_avengers import callbacks

    before = len(callbacks._HOOKS)
    for _ in range(3):
        with get_usage_metadata_callback() as outer:
            with get_usage_metadata_callback() as inner:
                handlers = CallbackManager.configure().handlers
                assert outer in handlers
                assert inner in handlers
            assert inner not in CallbackManager.configure().handlers
        assert outer not in CallbackManager.configure().handlers
    assert len(callbacks._HOOKS) == max(before, 2), "one hook per nesting depth, ever"


# ---------------------------------------------------------------------------- one answer


def test_billed_cost_is_used_and_split_by_list_prices() -> None:
    cost = answer_cost(TOKENS, 0.004, PROFILE)  # list: 0.001 in + 0.0015 out
    assert cost.source == "openrouter"
    assert cost.total == 0.004
    assert cost.input == pytest.approx(0.004 * 0.001 / 0.0025)
    assert cost.input + cost.output == pytest.approx(0.004)
    usage = cost.usage_metadata(TOKENS)  # type: ignore[arg-type]
    assert usage is not None
    assert (usage["input_cost"], usage["output_cost"], usage["total_cost"]) == (
        cost.input,
        cost.output,
        0.004,
    )


def test_list_prices_when_nothing_is_billed() -> None:
    cost = answer_cost(TOKENS, None, PROFILE)  # type: ignore[arg-type]
    assert (cost.source, cost.note) == ("list_prices", None)
    assert (cost.input, cost.output, cost.total) == pytest.approx((0.001, 0.0015, 0.0025))


def test_unknown_cost_leaves_usage_alone() -> None:
    cost = answer_cost(TOKENS, None, None)  # type: ignore[arg-type]
    assert (cost.total, cost.source) == (None, None)
    assert cost.usage_metadata(TOKENS) == TOKENS  # type: ignore[arg-type]
    billed_only = answer_cost(TOKENS, 0.002, {})  # type: ignore[arg-type]
    assert (billed_only.total, billed_only.input, billed_only.output) == (0.002, None, None)
    assert "input_cost" not in (billed_only.usage_metadata(TOKENS) or {})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("billed", "reason"),
    [
        ("abc", "is not a number"),
        (True, "is not a number"),
        ({"usd": 1}, "is not a number"),
        (-0.01, "is negative"),
        (math.nan, "is not finite"),
        (math.inf, "is not finite"),
        (1e308, "exceeds $2.5, the most 1500 tokens can cost"),
    ],
)
def test_impossible_billed_cost_is_refused_with_a_reason(billed: object, reason: str) -> None:
    value, why = billed_cost(billed, 1500)
    assert value is None
    assert why is not None
    assert reason in why
    cost = answer_cost(TOKENS, billed, PROFILE)  # type: ignore[arg-type]
    assert cost.source == "list_prices"
    assert cost.total == pytest.approx(0.0025)
    assert cost.note == why


def test_plausible_billed_costs() -> None:
    assert billed_cost(0, 10) == (0.0, None)
    assert billed_cost("0.0125", 10) == (0.0125, None)
    assert billed_cost(2.4, 1500) == (2.4, None)


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (1e-9, "$0.000000001"),  # six fixed decimals printed a 1e-9 cap as $0.000000
        (3.29696e-05, "$0.00003297"),
        (0.0189451, "$0.01895"),
        (1.0, "$1"),
        (4.4, "$4.4"),
        (0.0, "$0"),
    ],
)
def test_usd_amounts_in_messages_keep_four_significant_digits(amount: float, shown: str) -> None:
    assert format_usd(amount) == shown
