"""The README is short, its quickstart runs as pasted (offline), and its quoted alpha table is
what ``avengers alphas default`` prints, character for character."""

from __future__ import annotations

import re

import pytest
from docs_blocks import ROOT, blocks

from langchain_avengers.cli.main import main

README = ROOT / "README.md"
MAX_BYTES = 12 * 1024


def test_the_readme_fits_on_a_screen_or_two() -> None:
    assert len(README.read_bytes()) <= MAX_BYTES


def test_the_readme_set_up_commands_come_first() -> None:
    text = README.read_text(encoding="utf-8")
    fences = re.findall(r"^```(\w*)\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert fences[0] == ("bash", "pip install -e . && avengers demo\n")
    assert fences[1] == ("bash", 'pip install -e ".[test]" && pytest\n')


def test_the_quickstart_runs_as_pasted_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(
        "langchain_avengers.testing",
        reason="the offline OpenRouter stand-in (langchain_avengers.testing) is not in this "
        "checkout yet",
    )
    runnable = [b for b in blocks(README) if b.no_run is None]
    assert len(runnable) == 1, "the README has one python block: the quickstart"
    quickstart = runnable[0]
    assert len(quickstart.code.splitlines()) <= 20
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)
    exec(compile(quickstart.code, quickstart.where, "exec"), {"__name__": "__readme__"})


def test_the_alpha_table_is_what_the_command_prints(capsys: pytest.CaptureFixture) -> None:
    text = README.read_text(encoding="utf-8")
    quoted = re.search(r"`avengers alphas default` prints:\n\n```\n(.*?)```", text, re.DOTALL)
    assert quoted, "the README quotes `avengers alphas default`"
    assert main(["alphas", "default"]) == 0
    assert capsys.readouterr().out == quoted[1]
