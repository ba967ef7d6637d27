"""Fixtures for every test: an isolated user cache, and calibration records for any pool.

``AvengersChatModel()`` reads the live model catalog that ``avengers catalog refresh`` keeps
in the user cache directory; a developer's own refreshed catalog must not change what the
tests see, and no test may write there. Each test gets an empty cache directory of its own
(subprocesses inherit it through the environment).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from redis_server import URL_ENV, RedisServer

from langchain_avengers.catalog.base import CACHE_DIR_ENV

pytest.register_assert_rewrite("cli_errors")  # a helper module with asserts: detailed failures

PLUGIN = "langchain_avengers.testing.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    """Load the package's pytest plugin (the ``offline_openrouter`` fixture).

    An install of the package registers it through its ``pytest11`` entry point; an editable
    install made before that entry point existed does not, so it is imported here then (never
    both: pytest refuses one module registered under two names).
    """
    manager = config.pluginmanager
    if not any(getattr(plugin, "__name__", None) == PLUGIN for plugin in manager.get_plugins()):
        manager.import_plugin(PLUGIN)


SMALL_JSONL = Path(__file__).resolve().parent / "fixtures" / "small.jsonl"
SMALL_MODELS = ("acme/tiny", "acme/medium", "acme/large")
"""The pool of ``small.jsonl``, cheapest first."""


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's (empty) user cache directory, also set as ``$AVENGERS_CACHE_DIR``."""
    path = tmp_path_factory.mktemp("avengers-cache")
    monkeypatch.setenv(CACHE_DIR_ENV, str(path))
    return path


@pytest.fixture
def small_records_as(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    """Write ``small.jsonl`` with its models renamed (``{"acme/tiny": "openai/gpt-5"}``)."""

    def write(names: Mapping[str, str]) -> Path:
        text = SMALL_JSONL.read_text(encoding="utf-8")
        for old, new in names.items():
            text = text.replace(f'"{old}"', f'"{new}"')
        out = tmp_path / "renamed_small.jsonl"
        out.write_text(text, encoding="utf-8")
        return out

    return write


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A ``redis-server`` of this test's own (it may stop it)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """A Redis server's URL: ``$AVENGERS_REDIS_URL`` (CI's), else one started for this test.

    Each test gets a fresh database state: the server's keys are flushed first.
    """
    url = os.environ.get(URL_ENV) or request.getfixturevalue("redis_server").url
    import redis

    redis.Redis.from_url(url).flushdb()
    return url
