"""Every ```python block of the docs pages runs offline, and the CLI page is current.

Each page's runnable blocks run in order in one namespace (a later block may use what an
earlier one defined), from the repository root, against the offline OpenRouter stand-in
(``langchain_avengers.testing``) where a block uses it. A block that cannot run offline is
marked ``<!-- no-run: why -->`` on the line before its fence (docs/development.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import ROOT, blocks, pages

RUNNABLE = {
    page: runnable
    for page in pages()
    if page.name != "README.md"
    if (runnable := [b for b in blocks(page) if b.no_run is None])
}


@pytest.mark.parametrize("page", sorted(RUNNABLE), ids=lambda p: str(p.relative_to(ROOT / "docs")))
def test_the_page_code_blocks_run_offline(
    page: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code = [b.code for b in RUNNABLE[page]]
    if any("langchain_avengers.testing" in c for c in code):
        pytest.importorskip(
            "langchain_avengers.testing",
            reason="the offline OpenRouter stand-in (langchain_avengers.testing) is not "
            "in this checkout yet",
        )
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in RUNNABLE[page]:
        exec(compile(block.code, block.where, "exec"), namespace)


def test_every_python_block_either_runs_or_says_why_not() -> None:
    for page in pages():
        for block in blocks(page):
            assert block.no_run is None or block.no_run.strip(), block.where


def test_the_cli_reference_page_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli_reference.py"), "--check"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
