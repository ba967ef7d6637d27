"""LangChain's names keep LangChain's meaning: sampling options reach the routed model."""

from __future__ import annotations

import pytest
from local_chat import make_llm

from langchain_avengers.testing import OfflineOpenRouter

QUERY = "What is the capital of Australia?"


def test_sampling_options_per_call_reach_the_routed_model(server: OfflineOpenRouter) -> None:
    server.reset()
    llm = make_llm(server)
    message = llm.invoke(QUERY, top_p=0.9, temperature=0)
    (body,) = server.requests
    assert body["model"] == message.response_metadata["model_name"]
    assert (body["top_p"], body["temperature"]) == (0.9, 0)
    server.reset()
    list(llm.stream(QUERY, top_p=0.5, seed=7))
    (body,) = server.requests
    assert (body["top_p"], body["seed"]) == (0.5, 7)


def test_sampling_options_and_model_kwargs_from_the_constructor(server: OfflineOpenRouter) -> None:
    server.reset()
    llm = make_llm(
        server,
        top_p=0.8,
        temperature=0.3,
        seed=3,
        presence_penalty=0.1,
        model_kwargs={"user": "u-42"},
    )
    llm.invoke(QUERY)
    (body,) = server.requests
    assert (body["top_p"], body["temperature"], body["seed"]) == (0.8, 0.3, 3)
    assert body["presence_penalty"] == 0.1
    assert body["user"] == "u-42"


def test_nearest_clusters_is_not_sampled_and_the_old_spelling_names_it(
    server: OfflineOpenRouter,
) -> None:
    llm = make_llm(server)
    server.reset()
    with pytest.raises(ValueError, match=r"top_p: .*nucleus sampling.*nearest_clusters"):
        llm.invoke(QUERY, top_p=4)
    with pytest.raises(ValueError, match=r"top_p: .*nucleus sampling.*nearest_clusters"):
        make_llm(server, top_p=4)
    assert server.requests == []
    llm.invoke(QUERY, nearest_clusters=2)
    assert "nearest_clusters" not in server.requests[0]


def test_per_model_settings_have_their_own_name(server: OfflineOpenRouter) -> None:
    with pytest.raises(ValueError, match=r"model_kwargs: .*model ids.*model_settings="):
        make_llm(server, model_kwargs={"google/gemini-2.5-pro": {"temperature": 0}})


def test_profile_is_the_pools_union_with_the_largest_limits(server: OfflineOpenRouter) -> None:
    llm = make_llm(server)
    profiles = [llm.profile_of(model) or {} for model in llm.pool]
    assert llm.profile is not None
    for flag in ("tool_calling", "structured_output", "image_inputs"):
        assert llm.profile.get(flag, False) == any(p.get(flag, False) for p in profiles)
    assert llm.profile["max_input_tokens"] == max(p["max_input_tokens"] for p in profiles)
    assert "input_usd_per_mtok" not in llm.profile  # prices are no capability
