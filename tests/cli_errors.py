"""What a refused ``avengers`` command prints on stderr: exactly one ``avengers: error:`` line."""

from __future__ import annotations


def one_error_line(err: str) -> str:
    """The single line of ``err``, checked to be the CLI's error line."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("avengers: error: ")
    assert "Traceback" not in err
    return lines[0]
