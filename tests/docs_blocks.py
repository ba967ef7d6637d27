"""Find the ```python blocks of the README and the docs pages, and which of them run.

A block runs unless the line before its fence is an HTML comment ``<!-- no-run: why -->``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
NO_RUN = re.compile(r"<!-- no-run: (?P<why>[^>]+?) -->\n$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    code: str
    no_run: str | None
    """Why the block does not run, or None when it runs."""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The python blocks of one Markdown page, in order."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        skip = NO_RUN.search(before[-300:])
        found.append(
            Block(
                page=page,
                line=before.count("\n") + 1,
                code=match["code"],
                no_run=skip["why"] if skip else None,
            )
        )
    return found


def pages() -> list[Path]:
    """The README and every docs page."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
