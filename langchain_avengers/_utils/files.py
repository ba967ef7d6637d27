"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import functools
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` beside ``path``, fsync, then rename over it in one step."""
    _write_chunks(path, (text,))


def write_lines_atomically(path: Path, lines: Iterable[str]) -> None:
    """:func:`write_atomically` of ``lines``, each ended by a newline, written as they come."""
    _write_chunks(path, (line + "\n" for line in lines))


def _write_chunks(path: Path, chunks: Iterable[str]) -> None:
    """Write beside the target, flush to disk, then rename over it; a failure leaves no temp."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or a new file's usual ones (mkstemp's are 0o600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


@functools.cache
def _umask() -> int:
    """The process umask, read once (reading it means setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
