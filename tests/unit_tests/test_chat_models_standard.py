"""LangChain's standard unit tests for AvengersChatModel (no network)."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests
from standard_capabilities import AvengersCapabilities


class TestAvengersChatModelUnit(AvengersCapabilities, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"api_key": "test-key", "alpha": 0.5}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "OPENROUTER_API_KEY": "env-key",
                "OPENROUTER_BASE_URL": "https://example.invalid/api/v1",
            },
            {"alpha": 0.3},
            {"api_key": "env-key", "base_url": "https://example.invalid/api/v1", "alpha": 0.3},
        )
