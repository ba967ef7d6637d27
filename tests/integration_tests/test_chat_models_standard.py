"""LangChain's standard integration suite for AvengersChatModel, replayed from VCR cassettes.

Every inherited test replays ``cassettes/test_chat_models_standard/`` (no network). Re-record:

- against the local server: ``pytest tests/integration_tests/test_chat_models_standard.py
  --record-mode=rewrite``
- against OpenRouter: the same with ``OPENROUTER_API_KEY=... AVENGERS_RECORD_LIVE=1`` set.

Authorization headers are filtered out of cassettes (see ``conftest.vcr_config``).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from standard_capabilities import AvengersCapabilities

from langchain_avengers.chat_models.base import DEFAULT_BASE_URL
from langchain_avengers.testing import offline_openrouter

pytestmark = pytest.mark.vcr
RECORDING_MODES = {"once", "new_episodes", "all", "rewrite"}
REPLAY_BASE_URL = "http://127.0.0.1:9/api/v1"
"""Replays never connect: nothing listens on the discard port."""


@pytest.fixture(scope="module")
def standard_base_url(request: pytest.FixtureRequest) -> Any:
    """Live server (or OpenRouter) while recording; a dead address while replaying."""
    if request.config.getoption("--record-mode", default="none") not in RECORDING_MODES:
        yield REPLAY_BASE_URL
    elif os.environ.get("AVENGERS_RECORD_LIVE") == "1":
        yield DEFAULT_BASE_URL
    else:
        with offline_openrouter() as server:
            yield server.base_url


class TestAvengersChatModelIntegration(AvengersCapabilities, ChatModelIntegrationTests):
    base_url: ClassVar[str] = REPLAY_BASE_URL

    @pytest.fixture(autouse=True)
    def _point_at_endpoint(self, standard_base_url: str) -> None:
        type(self).base_url = standard_base_url

    @property
    def chat_model_params(self) -> dict[str, Any]:
        live_key = os.environ.get("OPENROUTER_API_KEY")
        recording_live = os.environ.get("AVENGERS_RECORD_LIVE") == "1"
        return {
            "base_url": self.base_url,
            "api_key": live_key if recording_live and live_key else "test-key",
            "alpha": 0.5,
        }

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def enable_vcr_tests(self) -> bool:
        return True

    # Multimodal tests stay off: each downloads its image/PDF/audio from the internet inside
    # the test body, which an offline run cannot do, and the bundled profiles do not declare
    # multimodal input support for the whole pool (llama-3.1-8b is text-only).
    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_pdf_inputs(self) -> bool:
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        return False
