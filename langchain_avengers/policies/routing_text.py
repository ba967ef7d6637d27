"""The text the router reads from a conversation: the latest human turn, or a bounded window.

Routing on the whole history would let an old turn decide where a new question goes; routing on
the latest human turn is the default, ``"conversation"`` reads up to
:data:`DEFAULT_ROUTING_TEXT_CHARS` characters of it instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_avengers.openrouter.messages import message_text

DEFAULT_ROUTING_TEXT_CHARS = 2000
"""Characters of a conversation that ``routing_text="conversation"`` reads: more than 99% of
the shared data sets' queries (p99 895 and 643 characters) fit whole."""


SUMMARY_SOURCE = "summarization"
"""``additional_kwargs["lc_source"]`` of the summary message ``SummarizationMiddleware`` adds."""

RoutingTextMode = Literal["latest_human", "conversation"]
ROUTING_TEXT_MODES: tuple[str, ...] = ("latest_human", "conversation")
"""Which messages the router reads: the latest human turn, or the whole conversation."""


def is_human_turn(message: BaseMessage) -> bool:
    """A message a person wrote (not a summary of earlier turns that middleware inserted)."""
    return (
        isinstance(message, HumanMessage)
        and message.additional_kwargs.get("lc_source") != SUMMARY_SOURCE
    )


def routing_text(
    messages: Sequence[BaseMessage],
    mode: RoutingTextMode = "latest_human",
    max_chars: int = DEFAULT_ROUTING_TEXT_CHARS,
) -> str:
    """The text routing reads from a call's messages.

    Args:
        messages: The call's messages, oldest first.
        mode: ``"latest_human"``: the latest message a person wrote (else the latest
            message), whole. ``"conversation"``: that message, then the system prompt, then
            earlier human and AI turns newest first, as long as ``max_chars`` allows, joined
            oldest first; tool results are left out. The latest human message and the system
            prompt keep their beginning when cut, earlier turns their end.
        max_chars: The character budget of ``"conversation"``.
    """
    latest = _latest_human_index(messages)
    if mode == "latest_human":
        return message_text(messages[latest]) if messages else ""
    if not messages:
        return ""
    system = [m for m in messages[:latest] if isinstance(m, SystemMessage)]
    earlier = [
        m
        for m in messages[:latest]
        if isinstance(m, (HumanMessage, AIMessage)) and message_text(m).strip()
    ]
    left = max_chars
    query, left = _cut_head(message_text(messages[latest]), left)
    prompt, left = _cut_head("\n".join(message_text(m) for m in system), left)
    turns: list[str] = []
    for message in reversed(earlier):
        if left <= 0:
            break
        piece, left = _cut_tail(message_text(message), left)
        turns.append(piece)
    return "\n\n".join(p for p in [prompt, *reversed(turns), query] if p)


def _latest_human_index(messages: Sequence[BaseMessage]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if is_human_turn(messages[index]):
            return index
    return len(messages) - 1


def _cut_head(text: str, left: int) -> tuple[str, int]:
    piece = text[: max(left, 0)]
    return piece, left - len(piece) - 2


def _cut_tail(text: str, left: int) -> tuple[str, int]:
    piece = text[-left:] if 0 < left < len(text) else text
    return piece, left - len(piece) - 2
