"""Every use of langchain-core's private API, in one place, with why and where it was verified.

The chat model routes each call before LangChain opens the call's run (so the run is named
after the routed model and carries the decision) and then calls one client of its pool. Both
need a few of LangChain's underscore names; they are used only through this module, so a core
release that changes one breaks one function here, found by the test suite that CI runs on the
lowest and the newest versions ``pyproject.toml`` allows.

Verified on langchain-core 1.8.3 and 1.8.4, langchain-openai 1.7.3 and 1.8.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

if TYPE_CHECKING:
    # ``BaseChatModel.bind`` is annotated with this private class; an override must return it.
    from langchain_core.language_models.chat_models import _ChatModelBinding as ChatModelBinding

__all__ = [
    "ChatModelBinding",
    "HiddenCallKeys",
    "agenerate_with",
    "astream_with",
    "generate_with",
    "input_messages",
    "stream_with",
]


def input_messages(model: BaseChatModel, value: LanguageModelInput) -> list[BaseMessage]:
    """The messages a chat model input stands for (a string, messages, a prompt value).

    Why: routing reads them before ``BaseChatModel.stream`` opens the run; core converts them
    with the private ``_convert_input``, so routing converts them exactly as the run will.
    """
    return model._convert_input(value).to_messages()


def generate_with(
    client: BaseChatModel,
    messages: list[BaseMessage],
    stop: Sequence[str] | None,
    run_manager: CallbackManagerForLLMRun | None,
    **kwargs: Any,
) -> ChatResult:
    """One pool client's answer inside the routed call's own run.

    Why: ``client.invoke`` would open a second LLM run (and a second trace) per call; the
    documented ``_generate`` hook of the client answers within the run the chat model opened,
    so one call is one LLM run that names the routed model.
    """
    return client._generate(
        messages, stop=list(stop) if stop else None, run_manager=run_manager, **kwargs
    )


async def agenerate_with(
    client: BaseChatModel,
    messages: list[BaseMessage],
    stop: Sequence[str] | None,
    run_manager: AsyncCallbackManagerForLLMRun | None,
    **kwargs: Any,
) -> ChatResult:
    """Async :func:`generate_with`."""
    return await client._agenerate(
        messages, stop=list(stop) if stop else None, run_manager=run_manager, **kwargs
    )


def stream_with(
    client: BaseChatModel, messages: list[BaseMessage], stop: Sequence[str] | None, **kwargs: Any
) -> Iterator[ChatGenerationChunk]:
    """One pool client's streamed answer inside the routed call's run (see :func:`generate_with`).

    No run manager is passed: the chat model reports each token on its own run.
    """
    return client._stream(messages, stop=list(stop) if stop else None, **kwargs)


def astream_with(
    client: BaseChatModel, messages: list[BaseMessage], stop: Sequence[str] | None, **kwargs: Any
) -> AsyncIterator[ChatGenerationChunk]:
    """Async :func:`stream_with`."""
    return client._astream(messages, stop=list(stop) if stop else None, **kwargs)


class HiddenCallKeys(BaseChatModel):
    """Keeps the chat model's private call arguments out of traces and cache keys.

    Why: the routing decision travels from ``generate`` to ``_generate`` as a keyword argument;
    core puts every keyword argument into the traced invocation params and the cache key
    (``_get_invocation_params``/``_get_llm_string``, protected hooks), where it must not be.
    """

    hidden_call_keys: ClassVar[tuple[str, ...]] = ()

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict:
        for key in self.hidden_call_keys:
            kwargs.pop(key, None)
        return super()._get_invocation_params(stop=stop, **kwargs)

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        for key in self.hidden_call_keys:
            kwargs.pop(key, None)
        return super()._get_llm_string(stop=stop, **kwargs)
