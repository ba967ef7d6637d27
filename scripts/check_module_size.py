"""Fail when a module of the package is longer than 500 lines: split it by concept."""

from __future__ import annotations

import sys
from pathlib import Path

LIMIT = 500
PACKAGE = Path(__file__).resolve().parents[1] / "langchain_avengers"


def main() -> int:
    """Print every module over the limit; exit 1 if there is one."""
    long = [
        (len(path.read_text(encoding="utf-8").splitlines()), path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]
    over = [(n, path) for n, path in long if n > LIMIT]
    for n, path in over:
        print(f"{path}: {n} lines (limit {LIMIT}); split it by concept")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
