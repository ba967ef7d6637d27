"""The response bodies of the offline OpenRouter.

A reply as a ``chat.completion`` body or as the ``chat.completion.chunk`` sequence of a stream,
with OpenRouter's usage (token counts and ``cost`` in USD); ids and timestamps come from the
request's hash, so answers are reproducible.
Part of the offline OpenRouter (``langchain_avengers.testing``); stdlib only.
"""

from __future__ import annotations

import re

from langchain_avengers.testing._messages import estimate_tokens, prompt_text
from langchain_avengers.testing._models import JsonDict, ModelInfo
from langchain_avengers.testing._replies import Reply, token_limit


def usage_payload(body: JsonDict, model: ModelInfo, reply: Reply) -> JsonDict:
    """OpenRouter usage: token counts, zeroed details and ``cost`` in USD."""
    prompt_tokens = max(1, estimate_tokens(prompt_text(body["messages"])))
    completion_tokens = estimate_tokens(reply.completion_text()) + reply.reasoning_tokens
    limit = token_limit(body)
    if limit is not None:
        completion_tokens = min(completion_tokens, limit)
    cost = (
        prompt_tokens * model.input_usd_per_mtok + completion_tokens * model.output_usd_per_mtok
    ) / 1_000_000
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "cost": float(cost),
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": min(reply.reasoning_tokens, completion_tokens),
            "image_tokens": 0,
        },
    }


def envelope(model: ModelInfo, digest: str, obj: str) -> JsonDict:
    """Fields every completion (chunk) carries; id and created come from the hash."""
    created = 1_700_000_000 + int(digest[:8], 16) % 100_000_000
    return {
        "id": f"gen-{created}-{digest[8:28]}",
        "provider": model.provider,
        "model": model.id,
        "object": obj,
        "created": created,
    }


def tool_calls_payload(reply: Reply) -> list[JsonDict]:
    """Tool calls in the Chat Completions message format."""
    return [
        {
            "id": c.id,
            "type": "function",
            "index": i,
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for i, c in enumerate(reply.tool_calls)
    ]


def completion_payload(body: JsonDict, model: ModelInfo, reply: Reply, digest: str) -> JsonDict:
    """The non-streaming ``chat.completion`` body."""
    message: JsonDict = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = tool_calls_payload(reply)
    choice = {
        "index": 0,
        "logprobs": None,
        "finish_reason": reply.finish_reason,
        "native_finish_reason": reply.finish_reason,
        "message": message,
    }
    return {
        **envelope(model, digest, "chat.completion"),
        "choices": [choice],
        "usage": usage_payload(body, model, reply),
    }


def split_pieces(text: str, words_per_piece: int = 3) -> list[str]:
    """Split text into a few streaming deltas that concatenate back to it."""
    words = re.split(r"(?<=\s)(?=\S)", text)
    return [
        "".join(words[i : i + words_per_piece]) for i in range(0, len(words), words_per_piece)
    ] or [""]


def stream_chunks(body: JsonDict, model: ModelInfo, reply: Reply, digest: str) -> list[JsonDict]:
    """The ``chat.completion.chunk`` sequence: role, deltas, finish, then usage."""
    base = envelope(model, digest, "chat.completion.chunk")

    def chunk(delta: JsonDict, finish_reason: str | None = None) -> JsonDict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        if finish_reason:
            choice["native_finish_reason"] = finish_reason
        return {**base, "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    for index, call in enumerate(reply.tool_calls):
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        for start in range(0, len(call.arguments), 8):
            fragment = {
                "index": index,
                "function": {"arguments": call.arguments[start : start + 8]},
            }
            chunks.append(chunk({"tool_calls": [fragment]}))
    if not reply.tool_calls:
        chunks += [chunk({"content": piece}) for piece in split_pieces(reply.content or "")]
    chunks.append(chunk({}, reply.finish_reason))
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": usage_payload(body, model, reply)})
    return chunks
