"""Strict, typed construction of AvengersChatModel (no network: nothing is called).

Every argument the model does not know, and every value it cannot use, is refused when the
model is built, with a message naming the argument and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.rate_limiters import InMemoryRateLimiter

from langchain_avengers import AvengersChatModel, RouterFileError
from langchain_avengers.routing.bundled import default_router_path

KEY = "sk-or-v1-construction-test-key-77c1"
POOL = [
    "meta-llama/llama-3.1-8b-instruct",
    "mistralai/mistral-large-2512",
    "google/gemini-2.5-pro",
    "google/gemini-2.5-flash",
]
PRO = "google/gemini-2.5-pro"


def build(**kwargs: Any) -> AvengersChatModel:
    return AvengersChatModel(api_key=KEY, **kwargs)


@pytest.mark.parametrize(
    ("argument", "nearest"),
    [("alpah", "alpha"), ("temprature", "temperature"), ("max_fallback", "max_fallbacks")],
)
def test_unknown_argument_names_the_nearest_field(argument: str, nearest: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown argument '{argument}'.*'{nearest}'"):
        build(**{argument: 0})


def test_unknown_argument_with_nothing_close() -> None:
    with pytest.raises(ValueError, match=r"unknown argument 'frobnicate'$"):
        build(frobnicate=True)


@pytest.mark.parametrize("argument", ["model", "model_name"])
def test_model_argument_explains_that_the_pool_is_routed(argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        build(**{argument: PRO})
    message = str(info.value)
    assert "models=[...]" in message
    assert "invoke(..., model=...)" in message


def test_openrouter_api_key_is_an_alias_of_api_key() -> None:
    llm = AvengersChatModel(openrouter_api_key=KEY)
    assert llm.api_key is not None
    assert llm.api_key.get_secret_value() == KEY


def test_langchain_base_arguments_and_aliases_are_accepted() -> None:
    llm = build(
        callbacks=[],
        tags=["t"],
        metadata={"m": 1},
        rate_limiter=InMemoryRateLimiter(requests_per_second=10),
        cache=False,
        verbose=False,
        disable_streaming="tool_calling",
        output_version="v0",
        custom_get_token_ids=lambda text: [0] * len(text),
        name="router",
        max_completion_tokens=50,
        request_timeout=30,
        stop_sequences=["END"],
    )
    assert (llm.max_tokens, llm.timeout, llm.stop) == (50, 30, ["END"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"models": ["openai/gpt-5"]}, r"models: \['openai/gpt-5'\] not in the router's pool"),
        ({"models": []}, "models: empty list"),
        ({"models": [1, 2]}, "models: expected a list of model ids"),
        ({"alpha": "high"}, r"alpha: expected a number in \[0, 1\].*got 'high'"),
        ({"alpha": True}, r"alpha: expected a number"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\], got 1.5"),
        ({"alpha": float("nan")}, r"alpha must be in \[0, 1\]"),
        ({"nearest_clusters": 0}, r"nearest_clusters must be an int in \[1, 60\]"),
        ({"nearest_clusters": 2.5}, r"nearest_clusters must be an int in \[1, 60\].*got 2.5"),
    ],
)
def test_routing_options_are_checked_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


@pytest.mark.parametrize("timeout", [0, -5, float("inf"), float("nan")])
def test_a_timeout_that_cannot_work_is_refused_at_construction(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        build(timeout=timeout)


def test_a_misspelt_routing_option_in_a_call_is_refused_before_any_request() -> None:
    llm = build(base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="invoke: unknown argument 'alpah'; did you mean 'alpha'"):
        llm.invoke("hi", alpah=0.2)
    with pytest.raises(ValueError, match="unknown argument 'session_di'; did you mean 'sess"):
        llm.invoke("hi", session_di="u-1")


def test_valid_routing_options_are_kept() -> None:
    llm = build(models=[PRO, PRO, POOL[0]], alpha=1, nearest_clusters=2)
    assert llm.models == [PRO, POOL[0]]
    assert (llm.alpha, llm.nearest_clusters) == (1.0, 2)


def test_model_settings_override_sampling_settings_per_model() -> None:
    llm = build(
        temperature=0.7,
        max_tokens=100,
        model_settings={PRO: {"temperature": 0, "max_completion_tokens": 10, "timeout": 9}},
    )
    pro, other = llm._clients[PRO], llm._clients[POOL[0]]
    assert (pro.temperature, pro.max_tokens, pro.request_timeout) == (0, 10, 9)
    assert (other.temperature, other.max_tokens, other.request_timeout) == (0.7, 100, 120)
    assert llm._get_ls_params(model=PRO)["ls_temperature"] == 0


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"model": "x"}, "'model' cannot be set per model: the model id is the key"),
        ({"base_url": "http://x"}, "'base_url' cannot be set per model"),
        ({"api_key": "k"}, "'api_key' cannot be set per model"),
        ({"max_retries": 3}, "'max_retries' cannot be set per model: retries and fallbacks"),
        ({"stream_usage": False}, "'stream_usage' cannot be set per model"),
        ({"callbacks": []}, "'callbacks' cannot be set per model"),
        ({"temprature": 0}, "unknown argument 'temprature'; did you mean 'temperature'"),
    ],
)
def test_model_settings_refuse_identity_connection_and_unknown_settings(
    setting: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match) as info:
        build(model_settings={PRO: setting})
    assert PRO in str(info.value)


def test_model_settings_for_a_model_outside_the_pool() -> None:
    with pytest.raises(ValueError, match=r"model_settings: model id\(s\) \['openai/gpt-5'\]"):
        build(model_settings={"openai/gpt-5": {"temperature": 0}})
    with pytest.raises(ValueError, match="expected a dict of ChatOpenAI settings"):
        build(model_settings={PRO: 0})


def test_bad_router_path_raises_the_router_file_error(tmp_path: Path) -> None:
    (tmp_path / "router.json").write_text("{not json")
    with pytest.raises(RouterFileError) as info:
        build(router=tmp_path)
    assert type(info.value) is RouterFileError
    with pytest.raises(RouterFileError, match=r"router\.json is missing"):
        build(router=tmp_path / "absent")
    with pytest.raises(
        TypeError, match="router: expected a fitted ClusterRouter or a path, got int"
    ):
        build(router=3)


def test_model_dump_json_describes_the_router_without_the_key() -> None:
    llm = build(router=default_router_path())
    dumped = json.loads(llm.model_dump_json())
    assert dumped["router"]["models"] == POOL
    assert dumped["api_key"] == "**********"
    assert KEY not in llm.model_dump_json()


def test_bind_and_with_routing_check_options() -> None:
    llm = build()
    with pytest.raises(ValueError, match="model: 'openai/gpt-5' is not in the router's pool"):
        llm.bind(model="openai/gpt-5")
    with pytest.raises(ValueError, match="unknown argument 'alpah'; did you mean 'alpha'"):
        llm.with_routing(alpah=0.2)
    with pytest.raises(ValueError, match="alpha: expected a number"):
        llm.bind(alpha="low")
    with pytest.raises(ValueError, match="unknown argument 'alpah'"):
        llm.with_structured_output({"title": "x", "type": "object"}, alpah=0.1)
    assert llm.bind(alpha=0.25, model=PRO).kwargs == {"model": PRO}
