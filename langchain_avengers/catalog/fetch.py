"""Fetching OpenRouter's model list safely: bounded in time and size, prices checked.

``avengers catalog refresh`` (:func:`~langchain_avengers.catalog.base.refresh_catalog`) reads
the answer through :func:`get_json` and keeps only entries :func:`refuse_impossible_prices`
lets through, so a broken or hostile endpoint cannot hang the refresh, fill the memory or the
cache, crash it with deep nesting, or put an infinite price into every later answer.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from langchain_avengers._utils.warnings import user_stacklevel
from langchain_avengers.catalog.profiles import CatalogError, CatalogWarning
from langchain_avengers.openrouter.billing import price_problem
from langchain_avengers.openrouter.errors import redact

__all__ = ["MAX_CATALOG_BYTES", "get_json", "refuse_impossible_prices"]

MAX_CATALOG_BYTES = 50 * 2**20
"""Largest ``GET /models`` answer accepted (OpenRouter's whole list is about 1 MB)."""
_ERROR_DETAIL_CHARS = 200


def get_json(url: str, *, api_key: str | None, timeout: float) -> object:
    """GET ``url`` and parse its JSON; every failure becomes one readable CatalogError.

    The whole exchange must end within ``timeout`` seconds (a server sending a byte at a
    time is cut off), the body may hold at most :data:`MAX_CATALOG_BYTES`, and JSON nested
    deeper than Python can parse is refused as such.
    """
    import httpx2  # the openai SDK's transport: one HTTP stack for OpenRouter

    if api_key and not (api_key.isascii() and api_key.isprintable()):
        msg = "the API key holds non-ASCII or control characters; it was not sent"
        raise CatalogError(msg)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + timeout
    try:
        with httpx2.stream(
            "GET", url, headers=headers, timeout=timeout, follow_redirects=True
        ) as response:
            body = _read_body(response, url, deadline, timeout)
    except (httpx2.HTTPError, httpx2.InvalidURL, UnicodeError) as exc:
        detail = redact(str(exc), api_key)
        msg = f"GET {url} failed: {type(exc).__name__}: {detail or 'no details'}"
        raise CatalogError(msg) from None
    if response.is_error:
        text = body.decode("utf-8", "replace")
        detail = " ".join(redact(text, api_key).split())[:_ERROR_DETAIL_CHARS]
        msg = f"GET {url} answered HTTP {response.status_code}: {detail or response.reason_phrase}"
        raise CatalogError(msg)
    try:
        return json.loads(body)
    except RecursionError:
        msg = f"GET {url}: the answer is nested too deeply to be a model list; refused"
        raise CatalogError(msg) from None
    except ValueError:
        msg = f"GET {url}: the answer is not JSON"
        raise CatalogError(msg) from None


def _read_body(response: Any, url: str, deadline: float, timeout: float) -> bytes:
    """The body of a streamed response, within the size cap and the overall deadline."""
    limit = MAX_CATALOG_BYTES
    too_big = (
        f"GET {url}: the answer is over {limit // 2**20} MB, more than any model list; refused"
    )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise CatalogError(too_big)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise CatalogError(too_big)
        if time.monotonic() > deadline:
            msg = f"GET {url}: no complete answer within {timeout:g} s (--timeout); gave up"
            raise CatalogError(msg)
        chunks.append(chunk)
    return b"".join(chunks)


def refuse_impossible_prices(data: list[dict[str, Any]], url: str) -> list[dict[str, Any]]:
    """The entries whose prices can be right; the others are dropped with one warning.

    A price such as ``"1e308"`` per token (infinite per million) would make every answer of
    that model cost ``inf`` and break spend pacing after the provider had answered; the
    model is left out of the refreshed catalog instead (the bundled entry, if any, stays).
    """
    kept, refused = [], []
    for entry in data:
        pricing = _mapping(entry.get("pricing"))
        problems = [
            f"{field} {pricing[field]!r} per token: {problem}"
            for field in ("prompt", "completion")
            if (problem := _per_token_problem(pricing.get(field)))
        ]
        if problems:
            refused.append(f"{entry['id']} ({'; '.join(problems)})")
        else:
            kept.append(entry)
    if refused:
        warnings.warn(
            f"GET {url}: left out {len(refused)} model(s) with impossible prices: "
            + ", ".join(refused),
            CatalogWarning,
            stacklevel=user_stacklevel(),
        )
    return kept


def _per_token_problem(per_token: object) -> str | None:
    """Why an OpenRouter per-token price string cannot be right (None: fine or not stated)."""
    if isinstance(per_token, bool) or not isinstance(per_token, (str, int, float)):
        return None
    try:
        value = Decimal(str(per_token))
    except InvalidOperation:
        return None
    if value.is_nan() or value < 0:  # "-1": variable pricing, no price
        return None
    return price_problem(float(value * 1_000_000))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
