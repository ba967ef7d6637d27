"""The model catalog offline: bundled snapshot, hand fixes, OpenRouter entries, cache files.

Fetching the live catalog needs HTTP; ``tests/integration_tests/test_catalog_live.py`` does
it against the local test server.
"""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from langchain_avengers import AvengersChatModel, ClusterRouter
from langchain_avengers.catalog import base as catalog_module
from langchain_avengers.catalog.base import (
    Catalog,
    CatalogError,
    CatalogWarning,
    bundled_catalog,
    cached_catalog,
    catalog_cache_path,
    catalog_summary,
    list_price_cost,
    load_catalog,
    profile_from_openrouter,
    refresh_catalog,
)
from langchain_avengers.chat_models.base import NoCapableModelError
from langchain_avengers.testing._models import MODELS_API_PATH

REPO = Path(__file__).resolve().parents[2]
MODELS_API = MODELS_API_PATH
NOTICE = catalog_module.DATA_DIR / "NOTICE"
SNAPSHOT_COMMIT = "f3fc692299671838c7c65fd8126bf84d81a2e817"
SNAPSHOT_DATE = "2026-07-02T00:40:28+08:00"
GPT5 = "openai/gpt-5"


def api_entries() -> dict[str, dict[str, Any]]:
    """The fixture's ``GET /models`` entries by id (OpenRouter's real format)."""
    return {e["id"]: e for e in json.loads(MODELS_API.read_text())["data"]}


def write_live_cache(path: Path, entries: list[dict[str, Any]]) -> None:
    """A cache file as ``refresh_catalog`` writes it."""
    payload = {"fetched_at": "2026-11-20T08:00:00+00:00", "base_url": "http://x/api/v1"}
    path.write_text(json.dumps({**payload, "data": entries}))


@pytest.fixture
def fixes_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Point the bundled catalog at a temporary hand-fixes file (the cache is rebuilt)."""
    path = tmp_path / "catalog_fixes.json"

    def write(models: Mapping[str, Any]) -> None:
        path.write_text(json.dumps({"source": "test fixes", "models": models}))
        catalog_module._bundled.cache_clear()

    monkeypatch.setattr(catalog_module, "FIXES_FILE", path)
    yield write
    catalog_module._bundled.cache_clear()


# ---------------------------------------------------------------------- bundled snapshot


def test_bundled_snapshot_has_every_openrouter_model_of_models_dev() -> None:
    bundled = bundled_catalog()
    assert len(bundled) == 337
    assert (bundled.source, bundled.snapshot, bundled.commit) == (
        "bundled",
        SNAPSHOT_DATE,
        SNAPSHOT_COMMIT,
    )
    assert bundled.origin.startswith("models.dev (MIT License, Copyright (c) 2025 models.dev)")
    assert "tool_choice" in bundled.origin  # the stated tool_choice assumption
    assert bundled.describe() == f"337 models, bundled catalog as of {SNAPSHOT_DATE}"
    gpt5 = bundled[GPT5]
    assert gpt5["input_usd_per_mtok"] == 1.25
    assert gpt5["output_usd_per_mtok"] == 10
    assert gpt5["max_input_tokens"] == 272_000
    assert (gpt5["tool_calling"], gpt5["structured_output"], gpt5["image_inputs"]) == (
        True,
        True,
        True,
    )
    assert gpt5["audio_inputs"] is False
    assert load_catalog("bundled") is bundled
    assert load_catalog() is bundled, "no live cache in this test: auto is the bundled snapshot"


@pytest.mark.requires_shared
def test_bundled_file_is_exactly_what_the_build_script_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_catalog", REPO / "scripts/build_catalog.py"
    )
    assert spec is not None
    assert spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    if not build.DEFAULT_MODELS_DEV.is_file():
        pytest.skip(f"{build.DEFAULT_MODELS_DEV} is absent (../shared/data beside the repo)")
    written = build.render(build.from_models_dev(build.DEFAULT_MODELS_DEV))
    assert catalog_module.BUNDLED_FILE.read_text(encoding="utf-8") == written, (
        "regenerate with: python scripts/build_catalog.py"
    )


def test_notice_attributes_the_bundled_snapshot() -> None:
    notice = NOTICE.read_text()
    for needed in (
        "models.dev",
        "MIT License",
        "Copyright (c) 2025 models.dev",
        SNAPSHOT_COMMIT,
        SNAPSHOT_DATE,
        "Apache License 2.0",  # the default router's data, still attributed
    ):
        assert needed in notice


def test_hand_fixes_apply_over_generated_entries(fixes_file: Callable[..., None]) -> None:
    generated = json.loads(catalog_module.BUNDLED_FILE.read_text())["models"]
    fixes_file(
        {
            GPT5: {"tool_choice": False, "fix_reason": "a test correction"},
            "acme/only-in-fixes": {"name": "Acme", "tool_calling": True, "fix_reason": "new"},
        }
    )
    bundled = bundled_catalog()
    assert len(bundled) == 338
    assert bundled[GPT5] == {**generated[GPT5], "tool_choice": False}
    assert bundled["acme/only-in-fixes"] == {"name": "Acme", "tool_calling": True}
    assert "fix_reason" not in json.dumps(bundled.to_dict())
    assert "hand fixes: 2 model(s) in catalog_fixes.json" in catalog_summary()


def test_a_fix_without_its_reason_is_refused(fixes_file: Callable[..., None]) -> None:
    fixes_file({GPT5: {"tool_choice": False}})
    with pytest.raises(
        CatalogError, match=r"catalog_fixes\.json: models\.openai/gpt-5: .*fix_reason"
    ):
        bundled_catalog()


def test_lookups_return_copies() -> None:
    bundled = bundled_catalog()
    bundled[GPT5]["tool_calling"] = False
    bundled.lookup(GPT5)["name"] = "changed"
    bundled.to_dict()[GPT5]["max_input_tokens"] = 1
    for _, profile in bundled.items():
        profile["input_usd_per_mtok"] = 0.0
    fresh = load_catalog("bundled")[GPT5]
    assert (fresh["tool_calling"], fresh["name"], fresh["max_input_tokens"]) == (
        True,
        "GPT-5",
        272_000,
    )
    assert fresh["input_usd_per_mtok"] == 1.25


def test_nearest_and_unknown_lookups() -> None:
    bundled = bundled_catalog()
    assert bundled.nearest("openai/gpt5")[0] == GPT5
    assert bundled.nearest("acme/claude-sonnet-4.5")[0] == "anthropic/claude-sonnet-4.5"
    assert GPT5 in bundled
    assert "openai/gpt5" not in bundled
    assert bundled.get("openai/gpt5") is None
    with pytest.raises(
        CatalogError, match=r"unknown model 'openai/gpt5' .* nearest known: openai/gpt-5"
    ):
        bundled.lookup("openai/gpt5")


def test_select_by_capability_and_input() -> None:
    bundled = bundled_catalog()
    tools = bundled.select(tool_calling=True)
    audio = bundled.select(inputs=["audio"])
    both = bundled.select(tool_calling=True, structured_output=True, inputs=["audio", "pdf"])
    assert set(both) < set(audio) < set(bundled)
    assert set(both) < set(tools)
    assert all(bundled[m]["pdf_inputs"] and bundled[m]["structured_output"] for m in both)
    assert "google/gemini-2.5-flash" in both
    assert "meta-llama/llama-3.1-8b-instruct" in tools
    assert "meta-llama/llama-3.1-8b-instruct" not in audio
    assert "aion-labs/aion-1.0-mini" not in tools
    with pytest.raises(ValueError, match="unknown kind"):
        bundled.select(inputs=["smell"])


def test_table_rows() -> None:
    bundled = bundled_catalog()
    unpriced = next(m for m in bundled if "input_usd_per_mtok" not in bundled[m])
    lines = bundled.table([GPT5, unpriced]).splitlines()
    assert lines[0].split() == [
        "model",
        "$/1M",
        "in",
        "$/1M",
        "out",
        "context",
        "capabilities",
        "inputs",
    ]
    assert lines[1].split() == [
        GPT5,
        "1.25",
        "10",
        "272,000",
        "tools,structured,reasoning",
        "text,image,pdf",
    ]
    assert lines[2].split()[:3] == [unpriced, "-", "-"]
    assert bundled.table([]).split() == lines[0].split()


# ---------------------------------------------------------------------- OpenRouter entries


def test_profile_from_openrouter_entry() -> None:
    flash = profile_from_openrouter(api_entries()["google/gemini-2.5-flash"])
    assert flash == {
        "name": "Google: Gemini 2.5 Flash",
        "max_input_tokens": 1_048_576,
        "max_output_tokens": 65_535,
        "input_usd_per_mtok": 0.3,  # "0.0000003" per token, exactly
        "output_usd_per_mtok": 2.5,
        "tool_calling": True,
        "tool_choice": True,
        "structured_output": True,
        "reasoning_output": True,
        "temperature": True,
        "text_inputs": True,
        "image_inputs": True,
        "pdf_inputs": True,  # OpenRouter says "file"
        "audio_inputs": True,
        "video_inputs": True,
        "text_outputs": True,
        "image_outputs": False,
        "audio_outputs": False,
    }


def test_variable_or_missing_prices_give_no_price() -> None:
    auto = profile_from_openrouter(api_entries()["openrouter/auto"])  # "-1" prices
    assert "input_usd_per_mtok" not in auto
    assert "output_usd_per_mtok" not in auto
    assert auto["tool_calling"] is False  # supported_parameters: []
    assert "max_output_tokens" not in auto  # top_provider limit null
    for pricing in (
        {},
        {"prompt": "free", "completion": None},
        {"prompt": "NaN", "completion": True},
    ):
        profile = profile_from_openrouter({"id": "a/b", "pricing": pricing})
        assert "input_usd_per_mtok" not in profile
        assert "output_usd_per_mtok" not in profile
    free = profile_from_openrouter({"id": "a/b", "pricing": {"prompt": "0", "completion": 0}})
    assert (free["input_usd_per_mtok"], free["output_usd_per_mtok"]) == (0.0, 0.0)


def test_what_an_entry_does_not_state_stays_unstated() -> None:
    bare = profile_from_openrouter(
        {"id": "acme/bare", "context_length": "big", "architecture": None}
    )
    assert bare == {"name": "acme/bare"}
    text_only = profile_from_openrouter(
        {
            "id": "a/b",
            "architecture": {"input_modalities": ["text"]},
            "supported_parameters": ["tools"],
        }
    )
    assert text_only["image_inputs"] is False
    assert text_only["pdf_inputs"] is False
    assert (text_only["tool_calling"], text_only["tool_choice"]) == (True, False)
    assert text_only["structured_output"] is False


@pytest.mark.parametrize("param", ["response_format", "structured_outputs"])
def test_either_structured_parameter_means_structured_output(param: str) -> None:
    profile = profile_from_openrouter({"id": "a/b", "supported_parameters": [param]})
    assert profile["structured_output"] is True


def test_list_price_cost() -> None:
    gpt5 = bundled_catalog()[GPT5]
    assert list_price_cost(gpt5, 1_000_000, 100_000) == pytest.approx(1.25 + 1.0)
    assert list_price_cost({"name": "x"}, 10, 10) is None
    assert list_price_cost(None, 10, 10) is None


# ---------------------------------------------------------------------- files and the cache


def test_cache_path_follows_the_environment(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert catalog_cache_path() == cache_dir / "openrouter_models.json"
    monkeypatch.delenv(catalog_module.CACHE_DIR_ENV)
    default = catalog_cache_path()
    assert default.name == "openrouter_models.json"
    assert "langchain-avengers" in default.parts


def test_saved_model_list_and_bundled_format_files(tmp_path: Path) -> None:
    saved = load_catalog(MODELS_API)
    assert len(saved) == 9
    assert saved.source == str(MODELS_API)
    assert saved.origin == "a saved GET /api/v1/models response"
    assert saved["openai/gpt-5"]["input_usd_per_mtok"] == 1.25
    bundled_format = tmp_path / "mine.json"
    bundled_format.write_text(
        json.dumps({"source": "mine", "models": {"a/b": {"tool_calling": True}}})
    )
    mine = load_catalog(bundled_format)
    assert dict(mine) == {"a/b": {"tool_calling": True}}
    assert mine.origin == "mine"


def test_a_price_list_file_is_a_catalog(tmp_path: Path) -> None:
    """The shape of ``../shared/data/openrouter_4models.prices.json``: profiles with an id."""
    prices = tmp_path / "prices.json"
    entry = {"input_usd_per_mtok": 0.5, "output_usd_per_mtok": 1.5, "context_length": 128000}
    prices.write_text(json.dumps({"source": "list prices", "models": [{"id": "a/b", **entry}]}))
    catalog = load_catalog(prices)
    assert dict(catalog) == {
        "a/b": {"input_usd_per_mtok": 0.5, "output_usd_per_mtok": 1.5, "max_input_tokens": 128000}
    }
    assert list_price_cost(catalog["a/b"], 1_000_000, 1_000_000) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{not json", r"not valid JSON \(.* at line 1\)"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"data": [{"name": "no id"}]}', "expected {'data': \\[{'id'"),
        ('{"models": {"a/b": 3}}', r"models\.a/b: expected an object, got int"),
        ('{"models": 3}', "expected 'models' to map model ids to profiles or to list .*got int"),
        ('{"models": [{"name": "x"}]}', r"models\[0\]: expected an object with a string 'id'"),
    ],
)
def test_bad_catalog_files_name_the_file_and_problem(
    tmp_path: Path, content: str, error: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CatalogError, match=error) as info:
        load_catalog(path)
    assert str(path) in str(info.value)


def test_live_cache_is_layered_over_the_bundled_snapshot(cache_dir: Path) -> None:
    entries = api_entries()
    llama = dict(entries["meta-llama/llama-3.1-8b-instruct"])
    llama["supported_parameters"] = ["max_tokens", "temperature"]  # no tools
    live_only = {**entries["openrouter/auto"], "id": "acme/live-only"}
    write_live_cache(cache_dir / "openrouter_models.json", [llama, live_only])
    live = load_catalog("live")
    assert (len(live), live.source, live.snapshot) == (2, "live", "2026-11-20T08:00:00+00:00")
    assert live.origin == "GET http://x/api/v1/models"
    auto = load_catalog()
    assert auto.source == "live+bundled"
    assert len(auto) == 338  # acme/live-only is new; llama replaced
    assert auto["meta-llama/llama-3.1-8b-instruct"]["tool_calling"] is False
    assert auto["meta-llama/llama-3.1-8b-instruct"]["name"] == "Meta: Llama 3.1 8B Instruct"
    assert auto[GPT5] == bundled_catalog()[GPT5]
    assert (auto.layer_of("acme/live-only"), auto.layer_of(GPT5)) == ("live", "bundled")
    assert cached_catalog() is cached_catalog(), "parsed once per file version"
    summary = catalog_summary()
    assert "2 models fetched 2026-11-20T08:00:00+00:00 by GET http://x/api/v1/models" in summary
    assert "in use: 338 models" in summary


def test_damaged_cache_is_ignored_with_a_warning_but_refused_when_asked_for(
    cache_dir: Path,
) -> None:
    cache = cache_dir / "openrouter_models.json"
    cache.write_text('{"fetched_at": "x", "data": [')
    with pytest.warns(CatalogWarning, match=re.escape(str(cache))):
        assert load_catalog() is bundled_catalog()
    with pytest.raises(CatalogError, match="not valid JSON"):
        load_catalog("live")
    assert "damaged, ignored" in catalog_summary()
    with pytest.warns(CatalogWarning, match="ignoring the live model catalog"):
        llm = AvengersChatModel(api_key="test-key")
    assert llm.profile_of(GPT5) is None  # not in the default pool
    assert llm.profile_of("google/gemini-2.5-flash") == bundled_catalog()["google/gemini-2.5-flash"]


@pytest.mark.parametrize("key", ["sk-or-secret\nX-Injected: 1", "sk-or-sécret"])
def test_a_key_that_cannot_be_a_header_is_never_sent_nor_echoed(cache_dir: Path, key: str) -> None:
    """Sockets are off here: the refusal must come before any connection."""
    with pytest.raises(CatalogError, match="not sent") as info:
        refresh_catalog("http://127.0.0.1:9/api/v1", api_key=key)
    assert "secret" not in str(info.value)
    assert "sécret" not in str(info.value)
    assert list(cache_dir.iterdir()) == []


def test_no_live_cache_yet(cache_dir: Path) -> None:
    assert cached_catalog() is None
    with pytest.raises(CatalogError, match="run `avengers catalog refresh` first"):
        load_catalog("live")
    assert "not fetched yet" in catalog_summary()


# ---------------------------------------------------------------------- the chat model


@tool
def lookup(word: str) -> str:
    """Look a word up."""
    return word


@pytest.fixture
def mixed_pool_router(
    small_records_as: Callable[[Mapping[str, str]], Path], keyword_embeddings: Any
) -> ClusterRouter:
    """A router whose pool has a catalog model, a mistyped id and an unknown id."""
    records = small_records_as(
        {"acme/tiny": "qwen/qwen3-235b-a22b-2507", "acme/medium": "openai/gpt5"}
    )
    return ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings).fit(records)


def test_unknown_pool_models_are_named_with_the_nearest_known_ids(
    mixed_pool_router: ClusterRouter,
) -> None:
    with pytest.warns(UserWarning, match="no profile for pool model") as caught:
        llm = AvengersChatModel(router=mixed_pool_router, api_key="test-key")
    message = " ".join(str(w.message) for w in caught)
    ours = [w for w in caught if "no profile for pool model" in str(w.message)]
    assert [w.filename for w in ours] == [__file__]  # the user's line, not pydantic's
    assert "openai/gpt5 (nearest known: openai/gpt-5" in message
    assert "acme/large (nearest known:" in message
    assert "qwen/qwen3-235b-a22b-2507" not in message
    assert llm.profile_of("openai/gpt5") is None
    qwen = llm.profile_of("qwen/qwen3-235b-a22b-2507")
    assert qwen == bundled_catalog()["qwen/qwen3-235b-a22b-2507"]


def test_catalog_pool_builds_without_a_warning(
    small_records_as: Callable[[Mapping[str, str]], Path], keyword_embeddings: Any
) -> None:
    records = small_records_as(
        {
            "acme/tiny": "qwen/qwen3-235b-a22b-2507",
            "acme/medium": "anthropic/claude-sonnet-4.5",
            "acme/large": GPT5,
        }
    )
    router = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings).fit(
        records
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        llm = AvengersChatModel(router=router, api_key="test-key")
    assert all(llm.profile_of(m) for m in router.models_)


def test_no_profile_is_told_apart_from_a_profile_saying_no(
    mixed_pool_router: ClusterRouter,
) -> None:
    profiles: dict[str, Any] = {"acme/large": {"name": "Large", "structured_output": True}}
    with pytest.warns(UserWarning, match="openai/gpt5"):
        llm = AvengersChatModel(router=mixed_pool_router, api_key="test-key", profiles=profiles)
    pool = ["openai/gpt5", "acme/large"]
    with pytest.raises(NoCapableModelError) as info:
        llm.bind_tools([lookup]).invoke("What is 2 plus 2?", models=pool)
    reasons = str(info.value)
    assert (
        "openai/gpt5 (no profile for this model, so its tool_calling support is unknown" in reasons
    )
    assert "acme/large (its profile does not state tool_calling support)" in reasons
    no_tools = {"acme/large": {"tool_calling": False}}
    with pytest.warns(UserWarning, match="no profile for pool model"):
        llm = AvengersChatModel(router=mixed_pool_router, api_key="test-key", profiles=no_tools)
    with pytest.raises(
        NoCapableModelError, match=r"acme/large \(its profile says no tool_calling support\)"
    ):
        llm.bind_tools([lookup]).invoke("What is 2 plus 2?", models=pool)


def test_media_need_an_accepting_profile_before_any_request(
    mixed_pool_router: ClusterRouter,
) -> None:
    """Sockets are off in unit tests: the error must come before any HTTP request."""
    with pytest.warns(UserWarning, match="no profile for pool model"):
        llm = AvengersChatModel(router=mixed_pool_router, api_key="test-key")
    image = HumanMessage(
        [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]
    )
    with pytest.raises(NoCapableModelError) as info:
        llm.invoke([image])
    reasons = str(info.value)
    assert "needs ['image_inputs']" in reasons
    assert "qwen/qwen3-235b-a22b-2507 (its profile says no image_inputs support)" in reasons
    assert "acme/large (no profile for this model" in reasons


def test_profiles_for_models_outside_the_pool_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"profiles: model id\(s\) \['openai/gpt-5'\] are not in the router's pool"
    ):
        AvengersChatModel(api_key="test-key", profiles={GPT5: {"tool_calling": True}})


def test_catalog_type_is_a_read_only_mapping() -> None:
    bundled = bundled_catalog()
    assert isinstance(bundled, Catalog)
    assert "_profiles" not in repr(bundled)
    with pytest.raises(AttributeError):
        bundled.source = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("input_usd_per_mtok", "0.5", "expected a number of USD per million tokens, got '0.5'"),
        ("output_usd_per_mtok", -1, "expected a price of at least 0, got -1"),
        ("input_usd_per_mtok", 1e400, "expected a finite price, got inf"),
        ("output_usd_per_mtok", True, "expected a number of USD per million tokens, got True"),
        ("input_usd_per_mtok", False, "expected a number of USD per million tokens, got False"),
        ("output_usd_per_mtok", 1e9, "expected at most \\$1,000 per million tokens"),
        ("max_input_tokens", "128k", "expected a positive whole number of tokens, got '128k'"),
        ("max_output_tokens", True, "expected a positive whole number of tokens, got True"),
        ("tool_calling", "yes", "expected true or false, got 'yes'"),
        ("image_inputs", 1, "expected true or false, got 1"),
    ],
)
@pytest.mark.parametrize("shape", ["map", "list"])
def test_catalog_file_values_are_type_checked_naming_file_model_and_field(
    tmp_path: Path, field: str, value: object, expected: str, shape: str
) -> None:
    path = tmp_path / "prices.json"
    profile = {"input_usd_per_mtok": 0.5, "output_usd_per_mtok": 1.5, field: value}
    models: object = {"a/b": profile} if shape == "map" else [{"id": "a/b", **profile}]
    path.write_text(json.dumps({"models": models}).replace("Infinity", "1e400"))
    with pytest.raises(CatalogError, match=expected) as info:
        load_catalog(path)
    assert str(info.value).startswith(f"{path}: model 'a/b': field '{field}': ")


def test_a_bad_catalog_file_is_one_error_line_in_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_avengers.cli.main import main

    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"a/b": {"input_usd_per_mtok": "cheap"}}}))
    assert main(["catalog", "list", "--catalog", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"avengers: error: {path}: model 'a/b': field 'input_usd_per_mtok'")
    assert "Traceback" not in err
