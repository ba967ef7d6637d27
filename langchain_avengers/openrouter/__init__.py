"""OpenRouter: its addresses, how its failures are classified, and the clients that talk to it.

One HTTP stack talks to OpenRouter: the ``openai`` SDK over ``httpx2``, its transport.

- **Chat** (every routed call): one LangChain ``ChatOpenAI`` per pool model
  (:class:`~langchain_avengers.openrouter.chat.OpenRouterChatOpenAI`), because the runtime is
  a LangChain chat model and ChatOpenAI already turns messages, tools, structured output and
  streams into OpenAI's wire format; it keeps OpenRouter's ``usage.cost``.
- **Calibration** (``avengers calibrate``): the SDK's ``AsyncOpenAI`` directly, because a
  calibration run sends thousands of single-message requests concurrently and wants the raw
  usage and the SDK's retries, not LangChain runs and callbacks.
- **Catalog** (``avengers catalog refresh``): one ``GET /models`` with ``httpx2``, the client
  the SDK is built on, since the SDK has no call for OpenRouter's model list.

Failures of all three are classified by :mod:`~langchain_avengers.openrouter.errors`.
"""

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
"""OpenRouter's OpenAI-compatible API."""
BASE_URL_ENV = "OPENROUTER_BASE_URL"
"""Environment variable that points every client at another (compatible) base URL."""
API_KEY_ENV = "OPENROUTER_API_KEY"
"""Environment variable holding the OpenRouter key."""
OPENROUTER_HOST = "openrouter.ai"
"""Host of OpenRouter itself (which takes ``usage: {include: true}``)."""

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "OPENROUTER_BASE_URL", "OPENROUTER_HOST"]
