"""How an OpenRouter failure is classified: retry the same model, fall back, or give up.

The one place that reads status codes, ``Retry-After`` and OpenRouter's error bodies; the chat
model and calibration both decide their retries from :func:`classify`.
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai

NO_ENDPOINT = "No endpoints found that support"
"""Start of OpenRouter's 404 when no provider of a model serves a feature (tool use, images...)."""


REDACTED = "<api key>"
"""What an API key echoed in an error becomes."""

RETRYABLE_STATUSES = frozenset({408, 429})
"""Besides every 5xx: request timeout and rate limit."""


class ProviderError(openai.APIError):
    """OpenRouter answered HTTP 200 but with no usable completion.

    OpenRouter sends ``{"error": {"code": 502, ...}}`` with status 200 when an upstream
    provider fails, and some providers send ``"choices": []`` or a malformed stream event.
    ``status_code`` is the code the error body carries, or ``None``.
    """

    def __init__(self, message: str, request: httpx2.Request, *, status_code: int | None) -> None:
        super().__init__(message, request, body={"message": message, "code": status_code})
        self.status_code = status_code


def _field(response: dict | Any, name: str) -> Any:
    if isinstance(response, dict):
        return response.get(name)
    return getattr(response, name, None)


def _as_status(code: object) -> int | None:
    """An HTTP-like status from an error body's ``code`` (``502``, ``"502"``), else None."""
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return None


@dataclass(frozen=True)
class Failure:
    """How the router treats one failed request."""

    retryable: bool
    """Worth trying on another model."""
    same_model: bool
    """Worth retrying on the same model first (a transient failure, not a hang or a refusal)."""
    status: int | None
    retry_after: float | None
    """Seconds the provider asked to wait (``Retry-After``), if it said."""


NOT_RETRYABLE = Failure(retryable=False, same_model=False, status=None, retry_after=None)


def classify(error: BaseException) -> Failure:
    """Provider failures worth another attempt, and whether on the same model.

    Retryable: 408, 429, 5xx, timeouts, connection errors, HTTP 200 answers carrying such an
    error or no choices, stream error events, malformed stream events, and OpenRouter's 404
    when no provider of the model serves the request's tools or input kinds. Timeouts and
    that 404 go to the next model at once: a hung or unable provider stays so.
    """
    if isinstance(error, openai.APITimeoutError):
        return Failure(retryable=True, same_model=False, status=None, retry_after=None)
    if isinstance(error, openai.APIConnectionError):
        return Failure(retryable=True, same_model=True, status=None, retry_after=None)
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status == 404 and NO_ENDPOINT in str(error):
            return Failure(retryable=True, same_model=False, status=status, retry_after=None)
        return _by_status(status, retry_after(error.response.headers))
    if isinstance(error, ProviderError):
        return _by_status(error.status_code, None)
    if isinstance(error, openai.APIError):  # an error event inside a stream
        return _by_status(_as_status(error.code), None)
    return NOT_RETRYABLE


def _by_status(status: int | None, wait: float | None) -> Failure:
    if status is None or status >= 500 or status in RETRYABLE_STATUSES:
        return Failure(retryable=True, same_model=True, status=status, retry_after=wait)
    return Failure(retryable=False, same_model=False, status=status, retry_after=None)


def retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (a number or an HTTP date)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        return max(seconds, 0.0) if math.isfinite(seconds) else math.inf
    return None


def describe_failure(model: str, error: BaseException) -> dict[str, Any]:
    """What to record about a failed attempt: no request, headers or key, just the error."""
    status = getattr(error, "status_code", None) or classify(error).status
    message = getattr(error, "message", None) or str(error)
    return {"model": model, "error": type(error).__name__, "status": status, "message": message}


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (an API key) replaced by ``<api key>``.

    Servers and proxies sometimes quote the request's key in an error body; whatever shows
    an error from such a body (exception text, run summaries, metadata) goes through this.
    """
    return text.replace(secret, REDACTED) if secret else text


def redact_error(error: BaseException, secret: str | None) -> BaseException:
    """Remove ``secret`` from an exception's text, message and body, in place.

    The exception keeps its type, status and response, so retries and fallbacks still
    classify it; only what it shows changes.

    Returns:
        ``error`` itself, for ``raise redact_error(error, key)``.
    """
    if not secret:
        return error
    error.args = tuple(_redacted(arg, secret) for arg in error.args)
    if isinstance(error, openai.APIError):
        error.message = redact(error.message, secret)
        error.body = _redacted(error.body, secret)
    return error


def _redacted(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, dict):
        return {k: _redacted(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, secret) for v in value]
    return value


def request_url(error: BaseException) -> str | None:
    """The URL a failed request went to, without credentials or query string.

    ``None`` when the error carries no request. User info (``https://user:key@host``) and the
    query are dropped, so the URL can be printed whatever the caller put in ``base_url``.
    """
    url = getattr(getattr(error, "request", None), "url", None)
    if url is None:
        return None
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def name_the_url(error: Exception) -> Exception:
    """``error``, its message naming the URL it failed to reach when it is a connection error.

    The OpenAI SDK says only ``Connection error.`` (or ``Request timed out.``), which leaves a
    user with a wrong ``base_url`` guessing. The error keeps its type, so ``except
    openai.APIConnectionError`` still catches it; the API key is never part of a URL here.

    Args:
        error: The error about to reach the caller.

    Returns:
        The same error object, its message extended at most once.
    """
    url = request_url(error)
    if not isinstance(error, openai.APIConnectionError) or url is None:
        return error
    if url in error.message:
        return error
    method = getattr(getattr(error, "request", None), "method", "POST")
    error.message = f"{error.message.rstrip('.')}: no answer from {method} {url}"
    error.args = (error.message, *error.args[1:])
    return error
