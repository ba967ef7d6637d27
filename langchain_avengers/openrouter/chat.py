"""The chat client the router sends each routed call through: ChatOpenAI, made OpenRouter-aware.

It keeps the streamed cost and turns broken answers into errors.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import openai
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

from langchain_avengers.openrouter.errors import (  # split
    ProviderError,
    _as_status,
    _field,
)


class OpenRouterChatOpenAI(ChatOpenAI):
    """ChatOpenAI that keeps OpenRouter's ``usage.cost`` and turns broken answers into errors.

    ChatOpenAI maps a streamed ``usage`` to ``usage_metadata`` and drops ``cost``; the router
    needs it to report what a streamed call really cost. Broken answers (an error object or
    no choices in an HTTP 200 body, a malformed stream event) become :class:`ProviderError`,
    which the router treats like the HTTP failure they stand for.
    """

    def _convert_chunk_to_generation_chunk(
        self,
        chunk: dict,
        default_chunk_class: type,
        base_generation_info: dict | None,
    ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        cost = (chunk.get("usage") or {}).get("cost")
        if generation is not None and cost is not None:
            generation.message.response_metadata["openrouter_cost"] = cost
        return generation

    def _create_chat_result(
        self, response: dict | openai.BaseModel, generation_info: dict | None = None
    ) -> ChatResult:
        error = _field(response, "error")
        if error:
            raise self._provider_error(error)
        if not _field(response, "choices"):
            msg = "the provider answered with no choices (an empty completion)"
            raise ProviderError(msg, self._request(), status_code=None)
        return super()._create_chat_result(response, generation_info)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        try:
            yield from super()._stream(*args, **kwargs)
        except json.JSONDecodeError as error:
            raise self._malformed_event(error) from error

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
        except json.JSONDecodeError as error:
            raise self._malformed_event(error) from error

    def _request(self) -> httpx2.Request:
        """The request an error stands for (no headers, so no key)."""
        return httpx2.Request("POST", f"{self.openai_api_base}/chat/completions")

    def _provider_error(self, error: object) -> ProviderError:
        message = error.get("message") if isinstance(error, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        return ProviderError(
            f"the provider answered HTTP 200 with an error: {message or error}",
            self._request(),
            status_code=_as_status(code),
        )

    def _malformed_event(self, error: json.JSONDecodeError) -> ProviderError:
        return ProviderError(
            f"the provider sent a malformed stream event ({error.msg})",
            self._request(),
            status_code=None,
        )


# ---------------------------------------------------------------------- failures


# ---------------------------------------------------------------------- messages
