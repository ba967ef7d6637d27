"""The models the offline OpenRouter serves: ids, list prices, context, modalities.

Read from ``data/openrouter_models.json`` (OpenRouter's ``GET /models`` format, written by
``scripts/build_offline_models.py`` from the bundled catalog); :func:`models_payload` is the body
the server answers with. Stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class ModelInfo:
    """One model the server knows, priced like OpenRouter's list (USD per 1M tokens)."""

    id: str
    name: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    context_length: int
    input_modalities: frozenset[str] = frozenset({"text"})
    """What ``architecture.input_modalities`` lists ("text", "image", "file", "audio"...)."""

    @property
    def provider(self) -> str:
        """Provider name as OpenRouter reports it in responses, e.g. "Google"."""
        return self.name.split(":", 1)[0]


MODELS_API_PATH = Path(__file__).resolve().parent / "data" / "openrouter_models.json"
"""``GET /models`` answer in OpenRouter's format (``scripts/build_offline_models.py``)."""
TOOL_PARAMETERS = ("tools", "tool_choice")


def load_model_entries() -> list[JsonDict]:
    """The fixture's model entries, as OpenRouter lists them."""
    return cast(list[JsonDict], json.loads(MODELS_API_PATH.read_text(encoding="utf-8"))["data"])


def model_info(entry: JsonDict) -> ModelInfo:
    """Server-side view of one listed model: its name, per-million prices and context."""
    pricing = entry["pricing"]
    return ModelInfo(
        id=entry["id"],
        name=entry["name"],
        input_usd_per_mtok=max(Decimal(pricing["prompt"]), Decimal(0)) * 1_000_000,
        output_usd_per_mtok=max(Decimal(pricing["completion"]), Decimal(0)) * 1_000_000,
        context_length=int(entry["context_length"]),
        input_modalities=frozenset(entry["architecture"]["input_modalities"]),
    )


MODEL_ENTRIES = load_model_entries()
MODELS: dict[str, ModelInfo] = {e["id"]: model_info(e) for e in MODEL_ENTRIES}
REASONING_MODELS = {e["id"] for e in MODEL_ENTRIES if "reasoning" in e["supported_parameters"]}


def models_payload(no_tool_models: Collection[str] = ()) -> JsonDict:
    """The ``GET /models`` body; models in ``no_tool_models`` do not list tools."""
    data = []
    for entry in MODEL_ENTRIES:
        params = entry["supported_parameters"]
        if entry["id"] in no_tool_models:
            params = [p for p in params if p not in TOOL_PARAMETERS]
        data.append({**entry, "supported_parameters": params})
    return {"data": data}
