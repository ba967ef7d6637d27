"""Streaming one model's answer: wait for its first content, then decorate its chunks.

A failure before the first content chunk (an HTTP error, an error event, a malformed event)
lets the router try the next model, since nothing was shown yet; after it, the error is
raised and the answer is never spliced with another model's.

Streamed chunks carry integer token counts only: the closing chunk has the usage, and its cost
in ``response_metadata["cost"]`` and ``["avengers"]``. LangChain core adds chunks' usage with
``add_usage``, which refuses floats (langchain-ai/langchain#36015), and it adds three chunks or
more at once in many places (the end of ``BaseChatModel.stream()``, ``invoke`` when it streams,
and in core 1.8 every ``llm | parser`` stream), where the usage missing on the first two becomes
integer zeros to which float costs cannot be added. The answer LangChain assembles from the
chunks for its callbacks (what LangSmith records) does get the costs in ``usage_metadata``: the
first chunk is a :class:`FirstChunk`, whose ``+`` adds them after core's merge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessageChunk, UsageMetadata
from langchain_core.outputs import ChatGenerationChunk

from langchain_avengers.chat_models.costs import AnswerCost, answer_cost

__all__ = ["FirstChunk", "StreamTally", "aannotated", "ahead_of", "annotated", "head_of"]


class FirstChunk(ChatGenerationChunk):
    """The first chunk of a routed stream: ``first + rest`` puts the costs in the usage.

    The merged chunk is a plain ``ChatGenerationChunk``, so nothing downstream sees this class.
    """

    def __add__(self, other: Any) -> ChatGenerationChunk:
        merged = super().__add__(other)
        message = merged.message
        if isinstance(message, AIMessageChunk) and message.usage_metadata:
            cost = AnswerCost.from_metadata(message.response_metadata.get("avengers") or {})
            message.usage_metadata = cost.usage_metadata(message.usage_metadata)
        return merged


def has_content(chunk: ChatGenerationChunk) -> bool:
    """Whether a chunk shows something of the answer (text, content parts or a tool call)."""
    message = chunk.message
    return bool(message.content) or bool(getattr(message, "tool_call_chunks", None))


def head_of(chunks: Iterator[ChatGenerationChunk]) -> list[ChatGenerationChunk]:
    """The chunks up to and including the first with content (all of them if none has)."""
    head = []
    for chunk in chunks:
        head.append(chunk)
        if has_content(chunk):
            break
    return head


async def ahead_of(chunks: AsyncIterator[ChatGenerationChunk]) -> list[ChatGenerationChunk]:
    """Async :func:`head_of`."""
    head = []
    async for chunk in chunks:
        head.append(chunk)
        if has_content(chunk):
            break
    return head


@dataclass
class StreamTally:
    """Decorates one model's stream: the decision on the first chunk, usage and cost on the last."""

    report: dict[str, Any]
    """The routing decision (``response_metadata["avengers"]``)."""
    model: str
    profile: Mapping[str, Any] | None
    billed: object = None
    usage: UsageMetadata | None = None
    provider_model: str | None = None
    count: int = 0
    on_cost: Callable[[AnswerCost], None] | None = None
    """Told the answer's cost once the stream has ended."""

    def take(self, chunk: ChatGenerationChunk) -> ChatGenerationChunk:
        """Keep usage, billed cost and the provider's model id for the end; name ours first."""
        message = chunk.message
        meta = message.response_metadata
        if "openrouter_cost" in meta:
            self.billed = meta.pop("openrouter_cost")
        if isinstance(message, AIMessageChunk) and message.usage_metadata:
            self.usage = message.usage_metadata
            message.usage_metadata = None
        reported = (chunk.generation_info or {}).pop("model_name", None) or meta.pop(
            "model_name", None
        )
        self.provider_model = reported or self.provider_model
        first = not self.count
        self.count += 1
        if not first:
            return chunk
        meta.update(avengers=self.report, model_name=self.model)
        return FirstChunk(message=message, generation_info=chunk.generation_info)

    def last(self) -> ChatGenerationChunk:
        """The closing chunk: usage and cost, and the whole decision if nothing came before."""
        cost = answer_cost(self.usage, self.billed, self.profile)
        if self.on_cost is not None:
            self.on_cost(cost)
        metadata: dict[str, Any] = {"avengers": cost.metadata()}
        if cost.total is not None:
            metadata["cost"] = cost.total
        if self.provider_model:
            metadata["provider_model"] = self.provider_model
        first = not self.count
        if first:
            metadata.update(avengers={**self.report, **cost.metadata()}, model_name=self.model)
        last = AIMessageChunk(
            content="", usage_metadata=self.usage, response_metadata=metadata, chunk_position="last"
        )
        return FirstChunk(message=last) if first else ChatGenerationChunk(message=last)


def annotated(
    tally: StreamTally,
    head: list[ChatGenerationChunk],
    rest: Iterator[ChatGenerationChunk],
) -> Iterator[ChatGenerationChunk]:
    """The stream with the tally's decorations and closing chunk."""
    for chunk in head:
        yield tally.take(chunk)
    for chunk in rest:
        yield tally.take(chunk)
    yield tally.last()


async def aannotated(
    tally: StreamTally,
    head: list[ChatGenerationChunk],
    rest: AsyncIterator[ChatGenerationChunk],
) -> AsyncIterator[ChatGenerationChunk]:
    """Async :func:`annotated`."""
    for chunk in head:
        yield tally.take(chunk)
    async for chunk in rest:
        yield tally.take(chunk)
    yield tally.last()
