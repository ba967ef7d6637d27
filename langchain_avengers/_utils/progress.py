"""Progress bars that stay quiet off a terminal."""

from __future__ import annotations

from typing import Any


class _NoProgress:
    """Stands in for a disabled bar without importing tqdm."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        """Ignore progress."""

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """Ignore the status text."""


def progress(total: int, desc: str, *, enabled: bool = True, unit: str = "it") -> Any:
    """A tqdm bar, drawn only on a terminal and only when ``enabled``."""
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=None, leave=False, unit=unit)
