"""Integration-test fixtures: the offline OpenRouter (``langchain_avengers.testing``) and VCR.

Three ways to run the server-contract suite (``test_server_contract.py``):

* live (default): every request goes to a server started for the session;
* record: ``--record-mode=once`` (or ``rewrite``) writes gzipped cassettes to
  ``cassettes/<module>/`` beside this file;
* replay: ``--record-mode=none --block-network`` serves everything from the
  cassettes; no server is started, the model points at a dead port and the
  direct (server-only) tests skip.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_tests.conftest import CustomPersister, CustomSerializer, base_vcr_config
from vcr import VCR
from vcr.request import Request

from langchain_avengers import ClusterRouter, load_default_router
from langchain_avengers.testing import OfflineOpenRouter

OFFLINE_BASE_URL = "http://127.0.0.1:9/api/v1"
"""Where models point during replay: nothing listens on the discard port."""

VOLATILE_RESPONSE_HEADERS = {"date", "server"}
UUID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LOOPBACK_PORT_RE = re.compile(r"^(https?://(?:127\.0\.0\.1|localhost)):\d+")


class StableSerializer(CustomSerializer):
    """langchain-tests' gzipped YAML without gzip's timestamp, so re-recording
    unchanged traffic leaves the cassette files byte for byte the same."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> bytes:
        yml = gzip.decompress(CustomSerializer.serialize(cassette_dict))
        return gzip.compress(yml, mtime=0)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vcr_on_request: use VCR cassettes only when --record-mode is given; run live otherwise",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Turn ``vcr_on_request`` into ``vcr`` when a record mode was asked for."""
    if not cassettes_requested(config):
        return
    for item in items:
        if item.get_closest_marker("vcr_on_request"):
            item.add_marker(pytest.mark.vcr)


def pytest_recording_configure(config: pytest.Config, vcr: VCR) -> None:
    """Store cassettes as gzipped YAML with langchain-tests' safe serializer."""
    vcr.register_persister(CustomPersister())
    vcr.register_serializer("yaml.gz", StableSerializer())


def cassettes_requested(config: pytest.Config) -> bool:
    """True when pytest-recording was given ``--record-mode`` (record or replay)."""
    return config.getoption("--record-mode", default=None) is not None


def replaying(config: pytest.Config) -> bool:
    """True when nothing may reach a live server: cassettes are replayed
    (``--record-mode=none``) or the network is blocked."""
    return (
        config.getoption("--record-mode", default=None) == "none"
        or bool(config.getoption("--block-network", default=False))
        or bool(config.getoption("--disable-socket", default=False))
    )


def _normalise_request(request: Request) -> Request:
    """Strip what changes from run to run: uuid4s in bodies (``tool_example_to_messages``
    invents tool-call ids on every call) and the local server's random port.
    VCR applies this to a copy, both when recording and before matching."""
    if isinstance(request.body, bytes):
        request.body = UUID_RE.sub(b"00000000-0000-4000-8000-000000000000", request.body)
    request.uri = LOOPBACK_PORT_RE.sub(r"\1", request.uri)
    return request


def _drop_volatile_headers(response: dict[str, Any]) -> dict[str, Any]:
    """Keep re-recorded cassettes stable: the Date header changes on every run."""
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in VOLATILE_RESPONSE_HEADERS:
            del headers[name]
    return response


@pytest.fixture(scope="session")
def vcr_config() -> dict[str, Any]:
    """VCR settings: no secrets stored, and requests matched without host or port
    so cassettes replay whatever port the server had when they were recorded."""
    config = base_vcr_config()  # filters authorization, x-api-key and api-key
    config["filter_headers"] = [*config["filter_headers"], ("host", None)]  # has the port
    config["match_on"] = ["method", "path", "body"]
    config["before_record_request"] = _normalise_request
    config["before_record_response"] = _drop_volatile_headers
    config["serializer"] = "yaml.gz"
    config["path_transformer"] = VCR.ensure_suffix(".yaml.gz")
    # pytest-recording picks the per-module folder and takes the mode from the
    # command line (default "none"), so neither is pinned here.
    del config["cassette_library_dir"], config["record_mode"]
    return config


@pytest.fixture(scope="session")
def vcr_requested(request: pytest.FixtureRequest) -> bool:
    """Whether this run records or replays cassettes (``--record-mode`` given)."""
    return cassettes_requested(request.config)


@pytest.fixture(scope="session")
def openrouter_server(request: pytest.FixtureRequest) -> OfflineOpenRouter:
    """The session's offline OpenRouter: the one the ``offline_openrouter`` fixture of
    ``langchain_avengers.testing.pytest_plugin`` resets for each test."""
    if replaying(request.config):
        pytest.skip("needs the live server; this run replays cassettes only")
    server: OfflineOpenRouter = request.getfixturevalue("offline_openrouter_session")
    return server


@pytest.fixture
def server(openrouter_server: OfflineOpenRouter) -> Iterator[OfflineOpenRouter]:
    """The session server with a clean request log and default config for one test."""
    openrouter_server.reset()
    yield openrouter_server
    openrouter_server.reset()


@pytest.fixture(scope="session")
def openrouter_base_url(request: pytest.FixtureRequest) -> str:
    """The live server's URL, or a dead one while replaying cassettes."""
    if replaying(request.config):
        return OFFLINE_BASE_URL
    server: OfflineOpenRouter = request.getfixturevalue("openrouter_server")
    return server.base_url


@pytest.fixture(scope="module")
def router() -> ClusterRouter:
    """The bundled default router (loaded once per module)."""
    return load_default_router()
