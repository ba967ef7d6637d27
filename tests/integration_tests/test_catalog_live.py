"""The model catalog against the local OpenRouter-compatible server (real HTTP on loopback).

``avengers catalog refresh`` fetches the server's ``GET /models`` (a fixture in OpenRouter's
own format) into a per-test cache directory (``$AVENGERS_CACHE_DIR``, set by
``tests/conftest.py``); chat models built afterwards look models up there first.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from cli_errors import one_error_line
from langchain_core.messages import HumanMessage
from local_chat import SECRET, Joke, magic_function, make_llm

from langchain_avengers import ClusterRouter, load_default_router
from langchain_avengers.catalog.base import bundled_catalog, list_price_cost, load_catalog
from langchain_avengers.chat_models.base import NoCapableModelError
from langchain_avengers.cli.main import main
from langchain_avengers.testing import OfflineOpenRouter
from langchain_avengers.testing._models import models_payload

LLAMA = "meta-llama/llama-3.1-8b-instruct"
FLASH = "google/gemini-2.5-flash"
CATALOG_POOL = {
    "acme/tiny": "qwen/qwen3-235b-a22b-2507",
    "acme/medium": "anthropic/claude-sonnet-4.5",
    "acme/large": "openai/gpt-5",
}
TOOL_QUERY = "What is magic_function(3)? Use the tool."
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
MEDIA_PARTS = {
    "image_inputs": {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    "pdf_inputs": {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="},
    },
    "audio_inputs": {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
}
STANDARD_BLOCKS = {
    "image_inputs": {"type": "image", "base64": PIXEL, "mime_type": "image/png"},
    "pdf_inputs": {
        "type": "file",
        "base64": "JVBERi0xLjQ=",
        "mime_type": "application/pdf",
        "filename": "a.pdf",
    },
    "audio_inputs": {"type": "audio", "base64": "UklGRg==", "mime_type": "audio/wav"},
}


def refresh(server: OfflineOpenRouter, *more: str) -> int:
    return main(["catalog", "refresh", "--base-url", server.base_url, *more])


def with_media(flag: str, parts: Mapping[str, Any] = MEDIA_PARTS) -> HumanMessage:
    return HumanMessage([{"type": "text", "text": "What is in this attachment?"}, parts[flag]])


# ---------------------------------------------------------------------------- refresh


def test_refresh_writes_the_cache_atomically_with_its_fetch_time(
    server: OfflineOpenRouter,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", SECRET)
    server.faults.no_tool_models.add(LLAMA)
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    assert refresh(server) == 0
    after = dt.datetime.now(dt.timezone.utc)
    cache = cache_dir / "openrouter_models.json"
    payload = json.loads(cache.read_text(encoding="utf-8"))
    assert payload["base_url"] == server.base_url
    assert payload["data"] == models_payload(server.faults.no_tool_models)["data"]
    assert before <= dt.datetime.fromisoformat(payload["fetched_at"]) <= after
    assert [p.name for p in cache_dir.iterdir()] == [cache.name], "no temporary file left"
    out = capsys.readouterr()
    assert out.out == (
        f"fetched 9 models by GET {server.base_url}/models at {payload['fetched_at']}; "
        f"wrote {cache}\n"
    )
    assert server.model_list_auth == [f"Bearer {SECRET}"]
    assert SECRET not in out.out + out.err + cache.read_text(encoding="utf-8")

    assert main(["catalog"]) == 0
    summary = capsys.readouterr().out
    assert f"live cache: {cache}\n" in summary
    assert f"  9 models fetched {payload['fetched_at']} by GET {server.base_url}/models" in summary
    assert "in use: 337 models" in summary  # the 9 are all in the bundled snapshot too

    assert main(["catalog", "show", LLAMA, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["layer"] == "live"
    assert shown["catalog"]["snapshot"] == payload["fetched_at"]
    assert shown["profile"]["name"] == "Meta: Llama 3.1 8B Instruct"
    assert shown["profile"]["tool_calling"] is False
    assert main(["catalog", "list", "--tools", "--catalog", "live"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed[1:-2]] == [
        "anthropic/claude-sonnet-4.5",
        "google/gemini-2.5-flash",
        "google/gemini-2.5-pro",
        "mistralai/mistral-large-2512",
        "openai/gpt-5",
        "qwen/qwen3-235b-a22b-2507",
    ]


def test_refresh_defaults_to_the_configured_base_url_and_sends_no_key_without_one(
    server: OfflineOpenRouter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.setenv("OPENROUTER_BASE_URL", server.base_url)
    assert main(["catalog", "refresh"]) == 0
    assert f"GET {server.base_url}/models" in capsys.readouterr().out
    assert server.model_list_auth == [None]
    assert len(load_catalog("live")) == 9


def failing_refreshes(server: OfflineOpenRouter) -> dict[str, tuple[list[str], str]]:
    """Refresh arguments that fail, with a piece of the error line each gives."""
    root = f"http://127.0.0.1:{server.port}"
    return {
        "dead port": (["--base-url", "http://127.0.0.1:9/api/v1"], "ConnectError"),
        "HTTP 500": (["--base-url", server.base_url], "answered HTTP 500: "),
        "not the API": (["--base-url", f"{root}/nowhere"], "answered HTTP 404"),
    }


@pytest.mark.parametrize("case", ["dead port", "HTTP 500", "not the API"])
def test_failed_refresh_leaves_the_previous_cache_untouched(
    server: OfflineOpenRouter, cache_dir: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    assert refresh(server) == 0
    cache = cache_dir / "openrouter_models.json"
    previous = cache.read_bytes()
    capsys.readouterr()
    args, expected = failing_refreshes(server)[case]
    if case == "HTTP 500":
        server.faults.models_status = 500
    assert main(["catalog", "refresh", *args, "--timeout", "5"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert expected in line
    assert "/models" in line
    assert cache.read_bytes() == previous
    assert [p.name for p in cache_dir.iterdir()] == [cache.name]


def test_a_failed_write_leaves_no_temporary_file(
    server: OfflineOpenRouter,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert refresh(server) == 0
    cache = cache_dir / "openrouter_models.json"
    previous = cache.read_bytes()

    def disk_full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # the OS failing mid-write
    capsys.readouterr()
    assert refresh(server) == 2
    assert "No space left on device" in one_error_line(capsys.readouterr().err)
    assert cache.read_bytes() == previous
    assert [p.name for p in cache_dir.iterdir()] == [cache.name]


# ---------------------------------------------------------------------------- lookup order


def test_user_profiles_over_the_refreshed_cache_over_the_bundled_snapshot(
    server: OfflineOpenRouter,
) -> None:
    pool = [LLAMA, FLASH]
    order = [
        c.model
        for c in load_default_router().route(TOOL_QUERY, 0.0, allowed_models=pool).candidates
    ]
    assert order == pool, "llama is the cheaper choice for this query"

    bundled_only = make_llm(server)
    assert bundled_only.profile_of(LLAMA) == bundled_catalog()[LLAMA]

    server.faults.no_tool_models.add(LLAMA)  # the live list then says: no tools for llama
    assert refresh(server) == 0
    live = make_llm(server)
    assert live.profile_of(LLAMA)["tool_calling"] is False  # type: ignore[index]
    assert live.profile_of(LLAMA)["name"] == "Meta: Llama 3.1 8B Instruct"  # type: ignore[index]
    message = live.bind_tools([magic_function]).invoke(TOOL_QUERY, models=pool, alpha=0.0)
    assert message.response_metadata["avengers"]["excluded"] == {
        LLAMA: "its profile says no tool_calling support"
    }
    assert message.tool_calls[0]["name"] == "magic_function"
    assert server.models_called() == [FLASH]

    server.requests.clear()
    user = make_llm(server, profiles={LLAMA: {"tool_calling": True}})
    assert user.profile_of(LLAMA)["name"] == "Meta: Llama 3.1 8B Instruct"  # type: ignore[index]
    message = user.bind_tools([magic_function]).invoke(TOOL_QUERY, models=pool, alpha=0.0)
    info = message.response_metadata["avengers"]
    assert info["excluded"] == {}
    assert [(f["model"], f["status"]) for f in info["fallbacks"]] == [(LLAMA, 404)]
    assert server.models_called() == [LLAMA, FLASH]


# ---------------------------------------------------------------------------- catalog pool


@pytest.fixture
def catalog_pool_router(small_records_as: Callable[[Mapping[str, str]], Path]) -> ClusterRouter:
    """A router fitted on small.jsonl with its models renamed to three catalog models."""
    return ClusterRouter(n_clusters=3, nearest_clusters=1).fit(small_records_as(CATALOG_POOL))


def test_a_pool_from_the_catalog_needs_no_profiles(
    server: OfflineOpenRouter, catalog_pool_router: ClusterRouter
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        llm = make_llm(server, router=catalog_pool_router)
    answered = set()
    for alpha in (0.0, 1.0):
        tools = llm.bind_tools([magic_function]).invoke(TOOL_QUERY, alpha=alpha)
        assert tools.tool_calls[0]["args"] == {"input": 3}
        assert tools.response_metadata["avengers"]["required_capabilities"] == ["tool_calling"]
        answered.add(tools.response_metadata["model_name"])
        joke = llm.with_structured_output(Joke).invoke("Tell me a joke about cats", alpha=alpha)
        assert isinstance(joke, Joke)
    assert answered == {"qwen/qwen3-235b-a22b-2507", "openai/gpt-5"}
    assert set(server.models_called()) <= set(CATALOG_POOL.values())

    message = llm.invoke("What is the capital of Peru?", alpha=0.5)
    info = message.response_metadata["avengers"]
    assert info["excluded"] == {}
    assert info["cost_source"] == "openrouter"
    assert info["actual_cost"] == pytest.approx(message.response_metadata["token_usage"]["cost"])
    assert info["actual_cost"] > 0


def test_list_prices_price_a_call_when_openrouter_gives_no_cost(
    server: OfflineOpenRouter, catalog_pool_router: ClusterRouter
) -> None:
    llm = make_llm(server, router=catalog_pool_router)
    question = "Write a Python function that reverses a list."
    billed = llm.invoke(question, alpha=0.5)
    server.faults.omit_cost_models.update(CATALOG_POOL.values())
    priced = llm.invoke(question, alpha=0.5)
    model = priced.response_metadata["model_name"]
    assert model == billed.response_metadata["model_name"]
    info = priced.response_metadata["avengers"]
    assert "cost" not in priced.response_metadata["token_usage"]
    assert info["cost_source"] == "list_prices"
    usage = priced.usage_metadata
    assert usage is not None
    expected = list_price_cost(
        bundled_catalog()[model], usage["input_tokens"], usage["output_tokens"]
    )
    assert info["actual_cost"] == pytest.approx(expected)
    assert info["actual_cost"] == pytest.approx(billed.response_metadata["avengers"]["actual_cost"])

    streamed = list(llm.stream(question, alpha=0.5))
    last = streamed[-1].response_metadata["avengers"]
    assert last["cost_source"] == "list_prices"
    assert last["actual_cost"] == pytest.approx(expected)


# ---------------------------------------------------------------------------- media inputs


@pytest.mark.parametrize("parts", [MEDIA_PARTS, STANDARD_BLOCKS], ids=["openai", "standard"])
@pytest.mark.parametrize("flag", ["image_inputs", "pdf_inputs", "audio_inputs"])
def test_media_go_only_to_models_that_accept_them(
    server: OfflineOpenRouter, flag: str, parts: Mapping[str, Any]
) -> None:
    message = make_llm(server).invoke([with_media(flag, parts)], models=[LLAMA, FLASH], alpha=0.0)
    info = message.response_metadata["avengers"]
    assert message.response_metadata["model_name"] == FLASH
    assert info["required_capabilities"] == [flag]
    assert info["excluded"] == {LLAMA: f"its profile says no {flag} support"}
    assert server.models_called() == [FLASH]


@pytest.mark.parametrize("flag", ["image_inputs", "pdf_inputs", "audio_inputs"])
def test_media_no_pool_model_accepts_fail_before_any_request(
    server: OfflineOpenRouter, flag: str
) -> None:
    with pytest.raises(NoCapableModelError, match=f"needs \\['{flag}'\\]"):
        make_llm(server).invoke([with_media(flag)], models=[LLAMA])
    assert server.requests == []


@pytest.mark.parametrize(
    ("flag", "kind"), [("image_inputs", "image"), ("pdf_inputs", "file"), ("audio_inputs", "audio")]
)
def test_a_wrong_media_claim_gets_the_404_and_falls_back(
    server: OfflineOpenRouter, flag: str, kind: str
) -> None:
    llm = make_llm(server, profiles={LLAMA: {flag: True}})  # llama is text-only in truth
    message = llm.invoke([with_media(flag)], models=[LLAMA, FLASH], alpha=0.0)
    assert message.response_metadata["model_name"] == FLASH
    fallbacks = message.response_metadata["avengers"]["fallbacks"]
    assert [(f["model"], f["status"]) for f in fallbacks] == [(LLAMA, 404)]
    assert f"No endpoints found that support {kind} input" in fallbacks[0]["message"]
    assert server.models_called() == [LLAMA, FLASH]


# ---------------------------------------------------------------------------- refresh limits


def broken_refresh(
    server: OfflineOpenRouter, cache_dir: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> str:
    """Refresh once for real, then with ``args`` against the broken server: the error line
    (the cache must be as the first refresh left it)."""
    config = server.faults
    server.faults = type(config)()
    assert refresh(server) == 0
    server.faults = config
    cache = cache_dir / "openrouter_models.json"
    previous = cache.read_bytes()
    capsys.readouterr()
    assert refresh(server, *args) == 2
    assert cache.read_bytes() == previous
    assert [p.name for p in cache_dir.iterdir()] == [cache.name]
    return one_error_line(capsys.readouterr().err)


def test_refresh_refuses_an_answer_over_its_size_cap(
    server: OfflineOpenRouter, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.faults.models_padding_bytes = 60 * 2**20
    line = broken_refresh(server, cache_dir, capsys)
    assert "over 50 MB" in line
    assert f"GET {server.base_url}/models" in line


def test_refresh_stops_at_its_timeout_when_the_server_drips(
    server: OfflineOpenRouter, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.faults.models_drip_s = 0.2
    started = time.monotonic()
    line = broken_refresh(server, cache_dir, capsys, "--timeout", "1")
    assert time.monotonic() - started < 3
    assert "no complete answer within 1 s" in line


def test_refresh_refuses_absurdly_deep_nesting_clearly(
    server: OfflineOpenRouter, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.faults.models_body = b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    line = broken_refresh(server, cache_dir, capsys)
    assert "nested too deeply" in line


def test_refresh_refuses_an_impossible_price_per_model_with_a_warning(
    server: OfflineOpenRouter, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = models_payload(server.faults.no_tool_models)["data"]
    entries[0] = {**entries[0], "pricing": {**entries[0]["pricing"], "prompt": "1e308"}}
    entries[1] = {**entries[1], "pricing": {**entries[1]["pricing"], "completion": "0.5"}}
    server.faults.models_body = json.dumps({"data": entries}).encode()
    assert refresh(server) == 0
    [message] = capsys.readouterr().err.splitlines()
    assert message.startswith("avengers: warning: ")
    assert entries[0]["id"] in message
    assert entries[1]["id"] in message
    assert "1e308" in message
    live = load_catalog("live")
    assert entries[0]["id"] not in live
    assert entries[1]["id"] not in live
    assert len(live) == 7
    assert all(math.isfinite(p.get("input_usd_per_mtok", 0)) for p in live.values())
    layered = load_catalog()
    assert layered[entries[0]["id"]] == bundled_catalog()[entries[0]["id"]]
