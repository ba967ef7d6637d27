"""How the ``avengers`` command writes.

Strict JSON, text safe for a terminal, and a quiet end when the reader of stdout goes away.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from typing import Any

EXIT_STDOUT_CLOSED = 128 + 13
"""The status a shell reports for a program stopped by SIGPIPE (``yes | head -1``)."""


def strict_json(report: object) -> str:
    """Strict JSON text: NaN and infinities (say, a model with no held-out answer) as null."""
    return json.dumps(_finite_or_none(report), indent=2, allow_nan=False)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def terminal_safe(text: str) -> str:
    r"""``text`` with every non-printable character but newline and tab escaped (``\x1b``).

    Model ids, queries and answers come from files and providers; printed raw, an escape
    sequence among them could rewrite the terminal.
    """
    return "".join(
        c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


class TerminalSafeOutput(io.TextIOBase):
    """A text stream writing through :func:`terminal_safe` to another one."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` made terminal-safe; the length of the text given."""
        self._stream.write(terminal_safe(text))
        return len(text)

    def flush(self) -> None:
        """Flush the wrapped stream."""
        self._stream.flush()

    def fileno(self) -> int:
        """The wrapped stream's file descriptor."""
        return int(self._stream.fileno())


def silence_stdout() -> None:
    """Send what is left for stdout nowhere, so that exiting does not fail on it again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real file (tests)
        pass
