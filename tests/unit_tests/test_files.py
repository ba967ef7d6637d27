"""Atomic writes keep the usual permissions: a new file follows the umask, an old one its own."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from langchain_avengers._utils.files import write_atomically, write_lines_atomically

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_umask_permissions_not_mkstemps(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    write_lines_atomically(path, ['{"a": 1}'])
    mask = os.umask(0o022)
    os.umask(mask)
    assert mode(path) == 0o666 & ~mask
    assert path.read_text() == '{"a": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["records.jsonl"]


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text("old")
    path.chmod(0o640)
    write_atomically(path, "new")
    assert (path.read_text(), mode(path)) == ("new", 0o640)
