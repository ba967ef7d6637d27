"""Regenerate ``langchain_avengers/data/openrouter_catalog.json``, the bundled model catalog.

Sources (one of):

- ``--models-dev FILE`` (default ``../shared/data/openrouter_models.json``): the models.dev
  snapshot of every OpenRouter model (MIT, models.dev; its ``source_commit`` and
  ``source_date`` are kept in the output and shown by ``avengers catalog``);
- ``--models-json FILE``: a saved response of OpenRouter's ``GET /api/v1/models``.

Hand corrections live apart, in ``langchain_avengers/data/catalog_fixes.json``; they are
applied at load time and never written into the generated file.

    python scripts/build_catalog.py
    python scripts/build_catalog.py --models-json models.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from langchain_avengers.catalog.base import profile_from_openrouter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "langchain_avengers/data/openrouter_catalog.json"
DEFAULT_MODELS_DEV = ROOT.parent / "shared/data/openrouter_models.json"
INPUT_FLAGS = {
    "text": "text_inputs",
    "image": "image_inputs",
    "pdf": "pdf_inputs",
    "audio": "audio_inputs",
    "video": "video_inputs",
}
OUTPUT_FLAGS = {"text": "text_outputs", "image": "image_outputs", "audio": "audio_outputs"}
TOOL_CHOICE_NOTE = (
    "models.dev does not state tool_choice support; it is taken to follow tool_calling "
    "(OpenRouter lists 'tools' and 'tool_choice' together); `avengers catalog refresh` reads "
    "OpenRouter's own flags"
)


def profile_from_models_dev(entry: dict[str, Any]) -> dict[str, Any]:
    """Map one models.dev entry (as in the shared snapshot) to our profile fields."""
    profile: dict[str, Any] = {
        "name": entry.get("name"),
        "max_input_tokens": entry.get("max_input_tokens") or entry.get("context_length"),
        "max_output_tokens": entry.get("max_output_tokens"),
        "tool_calling": entry.get("tool_calling"),
        "tool_choice": entry.get("tool_calling"),
        "structured_output": entry.get("structured_output"),
        "reasoning_output": entry.get("reasoning"),
        "temperature": entry.get("temperature"),
        "input_usd_per_mtok": entry.get("input_usd_per_mtok"),
        "output_usd_per_mtok": entry.get("output_usd_per_mtok"),
        "cache_read_usd_per_mtok": entry.get("cache_read_usd_per_mtok"),
        "release_date": entry.get("release_date"),
        "open_weights": entry.get("open_weights"),
    }
    for key, flags in (("input_modalities", INPUT_FLAGS), ("output_modalities", OUTPUT_FLAGS)):
        given = entry.get(key)
        if isinstance(given, list):
            profile.update({flag: kind in given for kind, flag in flags.items()})
    return {k: v for k, v in profile.items() if v is not None}


def from_models_dev(path: Path) -> dict[str, Any]:
    """The catalog document built from a models.dev snapshot."""
    raw = json.loads(path.read_text())
    return {
        "source": f"{raw['source']}; {TOOL_CHOICE_NOTE}",
        "source_commit": raw.get("source_commit"),
        "source_date": raw.get("source_date"),
        "generated_by": "scripts/build_catalog.py",
        "models": {
            model: profile_from_models_dev(entry) for model, entry in sorted(raw["models"].items())
        },
    }


def from_models_json(path: Path) -> dict[str, Any]:
    """The catalog document built from a saved ``GET /api/v1/models`` response."""
    raw = json.loads(path.read_text())["data"]
    return {
        "source": f"a saved OpenRouter GET /api/v1/models response ({path.name})",
        "source_date": None,
        "generated_by": "scripts/build_catalog.py",
        "models": {e["id"]: profile_from_openrouter(e) for e in sorted(raw, key=lambda e: e["id"])},
    }


def render(document: dict[str, Any]) -> str:
    """The exact text written to ``OUT`` (a test checks the committed file against it)."""
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    """Write the catalog from the chosen source."""
    parser = argparse.ArgumentParser(description="Regenerate the bundled OpenRouter catalog.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--models-dev", type=Path, default=DEFAULT_MODELS_DEV)
    source.add_argument("--models-json", type=Path, help="saved GET /api/v1/models response")
    args = parser.parse_args()
    document = (
        from_models_json(args.models_json) if args.models_json else from_models_dev(args.models_dev)
    )
    OUT.write_text(render(document), encoding="utf-8")
    print(f"wrote {len(document['models'])} profiles to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
