"""mkdocs hooks (``hooks:`` in mkdocs.yml): quote repository files into a page.

The home page is the README: a page holding only ``<!-- include-readme -->`` becomes
``README.md`` with its ``docs/`` links made relative to the site, and without the parts between
``<!-- not-in-site -->`` and ``<!-- /not-in-site -->`` (what only a repository reader needs).
So the README and the home page cannot drift apart, and the strict build checks the README's
links too.

A line ``<!-- include-demoted: benchmarks/RESULTS.md -->`` in a page becomes that file (path from
the repository root), its headings moved two levels down (``#`` becomes ``###``) so they sit
under the page's ``## Full results``. The quoted file is read at build time, so the page never
goes stale.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README_MARKER = "<!-- include-readme -->"
NOT_IN_SITE = re.compile(r"<!-- not-in-site -->.*?<!-- /not-in-site -->\n?", re.DOTALL)
MARKER = re.compile(r"^<!-- include-demoted: (?P<path>\S+) -->$", re.MULTILINE)


def demote(markdown: str, levels: int = 1) -> str:
    """Add ``levels`` ``#`` to every ATX heading outside fenced code blocks (at most h6)."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            hashes = len(line) - len(line.lstrip("#"))
            line = "#" * min(6, hashes + levels) + line[hashes:]
        out.append(line)
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace each include marker by the demoted file."""

    def include(match: re.Match[str]) -> str:
        path = ROOT / match["path"]
        if not path.is_file():
            msg = f"include-demoted: no file {match['path']}"
            raise FileNotFoundError(msg)
        return demote(path.read_text(encoding="utf-8"), levels=2)

    if markdown.strip() == README_MARKER:
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        return NOT_IN_SITE.sub("", readme).replace("](docs/", "](")
    return MARKER.sub(include, markdown)
