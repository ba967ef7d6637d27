"""Regenerate ``langchain_avengers/data/openrouter_catalog.json`` (model profiles and prices).

Sources, in order of preference:

- ``--models-json FILE``: a saved response of OpenRouter's ``GET /api/v1/models`` (prices,
  context length and ``supported_parameters`` give tool calling / structured output);
- ``--prices FILE``: a prices file like ``../shared/data/openrouter_4models.prices.json``
  (prices and context length only; capabilities then come from the hand fixes).

Hand corrections live apart, in ``langchain_avengers/data/catalog_fixes.json``, and are applied
at load time, never written into the generated file.

    python scripts/build_catalog.py --prices ../shared/data/openrouter_4models.prices.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "langchain_avengers/data/openrouter_catalog.json"


def profile_from_openrouter(entry: dict[str, Any]) -> dict[str, Any]:
    """Map one OpenRouter model entry to our profile fields."""
    params = set(entry.get("supported_parameters") or [])
    pricing = entry.get("pricing") or {}
    top = entry.get("top_provider") or {}
    profile = {
        "name": entry.get("name", entry["id"]),
        "max_input_tokens": entry.get("context_length"),
        "max_output_tokens": top.get("max_completion_tokens"),
        "tool_calling": "tools" in params,
        "tool_choice": "tool_choice" in params,
        "structured_output": "structured_outputs" in params or "response_format" in params,
        "input_usd_per_mtok": float(pricing.get("prompt", 0)) * 1e6,
        "output_usd_per_mtok": float(pricing.get("completion", 0)) * 1e6,
    }
    return {k: v for k, v in profile.items() if v is not None}


def profile_from_prices(entry: dict[str, Any]) -> dict[str, Any]:
    """Prices and context length only; capabilities are left to the hand fixes."""
    return {
        "max_input_tokens": entry["context_length"],
        "input_usd_per_mtok": entry["input_usd_per_mtok"],
        "output_usd_per_mtok": entry["output_usd_per_mtok"],
    }


def main() -> None:
    """Write the catalog from the chosen source."""
    parser = argparse.ArgumentParser(description="Regenerate the bundled OpenRouter catalog.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--models-json", type=Path, help="saved GET /api/v1/models response")
    source.add_argument("--prices", type=Path, help="prices file (USD per million tokens)")
    parser.add_argument("--models", nargs="*", help="keep only these model ids")
    args = parser.parse_args()
    if args.models_json:
        raw = json.loads(args.models_json.read_text())["data"]
        profiles = {e["id"]: profile_from_openrouter(e) for e in raw}
        note = f"generated from a saved OpenRouter /api/v1/models response: {args.models_json.name}"
    else:
        raw = json.loads(args.prices.read_text())["models"]
        profiles = {e["id"]: profile_from_prices(e) for e in raw}
        note = f"generated from {args.prices.name}: list prices and context lengths"
    if args.models:
        profiles = {k: v for k, v in profiles.items() if k in set(args.models)}
    OUT.write_text(json.dumps({"source": note, "models": profiles}, indent=2) + "\n")
    print(f"wrote {len(profiles)} profiles to {OUT}")


if __name__ == "__main__":
    main()
