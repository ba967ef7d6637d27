"""``avengers catalog`` offline: summary, show and list (refresh needs HTTP: see
``tests/integration_tests/test_catalog_live.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_error_line

from langchain_avengers.catalog.base import bundled_catalog, load_catalog
from langchain_avengers.cli.main import main
from langchain_avengers.testing._models import MODELS_API_PATH

MODELS_API = MODELS_API_PATH
SNAPSHOT_DATE = "2026-07-02T00:40:28+08:00"


def test_summary_shows_the_snapshot_and_the_cache(
    cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"bundled snapshot: 337 models as of {SNAPSHOT_DATE} "
        "(models.dev commit f3fc692299671838c7c65fd8126bf84d81a2e817)"
    )
    assert out[1].startswith("  source: models.dev (MIT License")
    assert out[3] == f"live cache: {cache_dir / 'openrouter_models.json'}"
    assert out[4] == "  not fetched yet (run `avengers catalog refresh`)"
    assert out[5].startswith("in use: 337 models; lookup order: profiles=")


def test_show_prints_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "show", "anthropic/claude-sonnet-4.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "anthropic/claude-sonnet-4.5  (bundled entry; "
        f"337 models, bundled catalog as of {SNAPSHOT_DATE})"
    )
    fields = dict(line.split(None, 1) for line in lines[1:])
    profile = bundled_catalog()["anthropic/claude-sonnet-4.5"]
    assert list(fields) == list(profile)
    assert fields["input_usd_per_mtok"] == "3"
    assert fields["tool_calling"] == "True"
    assert fields["audio_inputs"] == "False"


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "show", "qwen/qwen3-235b-a22b-2507", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "qwen/qwen3-235b-a22b-2507"
    assert report["layer"] == "bundled"
    assert report["catalog"]["snapshot"] == SNAPSHOT_DATE
    assert report["catalog"]["commit"] == "f3fc692299671838c7c65fd8126bf84d81a2e817"
    assert report["profile"] == bundled_catalog()["qwen/qwen3-235b-a22b-2507"]


def test_show_unknown_model_names_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "show", "anthropic/claude-sonet-4.5"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "unknown model 'anthropic/claude-sonet-4.5'" in line
    assert "nearest known: anthropic/claude-sonnet-4.5" in line


def test_list_filters_by_capability_and_input(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["catalog", "list", "--tools", "--structured-output", "--input", "audio", "pdf"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = bundled_catalog().select(
        tool_calling=True, structured_output=True, inputs=["audio", "pdf"]
    )
    assert 0 < len(expected) < 337
    assert lines[0].split()[0] == "model"
    assert [line.split()[0] for line in lines[1:-2]] == expected
    assert lines[-1] == (
        f"{len(expected)} of 337 models, bundled catalog as of {SNAPSHOT_DATE}; "
        "prices in USD per million tokens"
    )
    assert main(["catalog", "list", "--input", "audio", "--input", "pdf"]) == 0
    repeated = capsys.readouterr().out.splitlines()
    assert len(repeated) >= len(lines)  # --input given twice adds up; tools not required


def test_list_json_from_a_saved_model_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "list", "--tools", "--json", "--catalog", str(MODELS_API)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["catalog"]["source"] == str(MODELS_API)
    assert report["catalog"]["origin"] == "a saved GET /api/v1/models response"
    saved = load_catalog(MODELS_API)
    assert report["models"] == {m: saved[m] for m in saved if saved[m].get("tool_calling")}
    assert "aion-labs/aion-1.0-mini" not in report["models"]
    assert "openrouter/auto" not in report["models"]
    assert len(report["models"]) == 7


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["catalog", "list", "--catalog", "live"], "no live catalog at"),
        (["catalog", "show", "openai/gpt-5", "--catalog", "missing.json"], "missing.json"),
    ],
)
def test_catalog_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert main(args) == 2
    assert expected in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "args",
    [
        ["catalog", "list", "--input", "smell"],
        ["catalog", "refresh", "--timeout", "0"],
        ["catalog", "show"],
        ["catalog", "nonsense"],
    ],
)
def test_argument_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert "usage: avengers catalog" in capsys.readouterr().err
