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
from pydantic import SecretStr

from langchain_avengers.openrouter.answers import NO_ANSWER_EVENTS, NOT_JSON, unusable_answer
from langchain_avengers.openrouter.errors import ProviderError, redact_error


class OpenRouterChatOpenAI(ChatOpenAI):
    """ChatOpenAI that keeps OpenRouter's ``usage.cost`` and turns broken answers into errors.

    ChatOpenAI maps a streamed ``usage`` to ``usage_metadata`` and drops ``cost``; the router
    needs it to report what a streamed call really cost. Broken answers become
    :class:`ProviderError`, which the router treats like the HTTP failure they stand for: an
    HTTP 200 body holding an error object, no choices or a page that is not JSON (see
    :mod:`~langchain_avengers.openrouter.answers`), a malformed stream event, and a stream
    that ends without one answer event (no content, tool call or finish reason).
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
        unusable = unusable_answer(response)
        if unusable is not None:
            raise ProviderError(unusable[0], self._request(), status_code=unusable[1])
        return super()._create_chat_result(response, generation_info)

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return super()._generate(*args, **kwargs)
        except json.JSONDecodeError as error:  # an HTML page labelled as JSON
            raise ProviderError(NOT_JSON, self._request(), status_code=None) from error
        except Exception as error:
            raise redact_error(error, self._key()) from error.__cause__

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return await super()._agenerate(*args, **kwargs)
        except json.JSONDecodeError as error:
            raise ProviderError(NOT_JSON, self._request(), status_code=None) from error
        except Exception as error:
            raise redact_error(error, self._key()) from error.__cause__

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        answered = False
        try:
            for chunk in super()._stream(*args, **kwargs):
                answered = answered or _is_answer_event(chunk)
                yield chunk
        except json.JSONDecodeError as error:
            raise self._malformed_event(error) from error
        except Exception as error:
            raise redact_error(error, self._key()) from error.__cause__
        if not answered:
            raise ProviderError(NO_ANSWER_EVENTS, self._request(), status_code=None)

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        answered = False
        try:
            async for chunk in super()._astream(*args, **kwargs):
                answered = answered or _is_answer_event(chunk)
                yield chunk
        except json.JSONDecodeError as error:
            raise self._malformed_event(error) from error
        except Exception as error:
            raise redact_error(error, self._key()) from error.__cause__
        if not answered:
            raise ProviderError(NO_ANSWER_EVENTS, self._request(), status_code=None)

    def _key(self) -> str | None:
        """The API key, to redact from errors (a callable key is never called here)."""
        key = self.openai_api_key
        return key.get_secret_value() if isinstance(key, SecretStr) else None

    def _request(self) -> httpx2.Request:
        """The request an error stands for (no headers, so no key)."""
        return httpx2.Request("POST", f"{self.openai_api_base}/chat/completions")

    def _malformed_event(self, error: json.JSONDecodeError) -> ProviderError:
        return ProviderError(
            f"the provider sent a malformed stream event ({error.msg})",
            self._request(),
            status_code=None,
        )


def _is_answer_event(chunk: ChatGenerationChunk) -> bool:
    """Whether a streamed chunk is part of an answer: content, a tool call or a finish reason."""
    message = chunk.message
    return (
        bool(message.content)
        or bool(getattr(message, "tool_call_chunks", None))
        or bool((chunk.generation_info or {}).get("finish_reason"))
    )
