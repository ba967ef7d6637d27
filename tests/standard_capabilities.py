"""What AvengersChatModel declares to LangChain's standard test suites (unit and integration)."""

from __future__ import annotations

from langchain_avengers import AvengersChatModel


class AvengersCapabilities:
    """Capability flags shared by the standard unit and integration test classes."""

    @property
    def chat_model_class(self) -> type[AvengersChatModel]:
        return AvengersChatModel

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "google/gemini-2.5-pro"
