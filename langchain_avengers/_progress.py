"""Progress bars that stay quiet off a terminal."""

from __future__ import annotations

from typing import Any


def progress(total: int, desc: str, *, enabled: bool = True) -> Any:
    """A tqdm bar, drawn only on a terminal and only when ``enabled``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=None if enabled else True, leave=False)
