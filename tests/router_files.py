"""Helpers for tests that edit router directories as another program would.

``reseal`` recomputes both checksums after an edit, so what is left for the loader to catch is
the edit itself: a forged but self-consistent router directory.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from langchain_avengers.routing.persistence import _content_digest


def read_metadata(path: Path) -> dict:
    return json.loads((path / "router.json").read_text())


def arrays_file(path: Path) -> Path:
    """The arrays file ``router.json`` names."""
    return path / read_metadata(path)["arrays"]["file"]


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(arrays_file(path), allow_pickle=False) as npz:
        return dict(npz)


def seal_arrays(path: Path, meta: dict) -> None:
    """Record the arrays file's checksum in ``router.json`` (written from ``meta``)."""
    digest = hashlib.sha256((path / meta["arrays"]["file"]).read_bytes()).hexdigest()
    meta["arrays"]["sha256"] = digest
    (path / "router.json").write_text(json.dumps(meta))


def reseal(
    path: Path,
    change: Callable[[dict], object] = lambda meta: None,
    change_arrays: Callable[[dict], object] = lambda arrays: None,
) -> None:
    """Edit the metadata and arrays, then recompute both checksums."""
    meta, arrays = read_metadata(path), read_arrays(path)
    change(meta)
    change_arrays(arrays)
    arrays["metadata_sha256"] = np.array(_content_digest(meta))
    np.savez_compressed(path / meta["arrays"]["file"], **arrays)
    seal_arrays(path, meta)


def replace_member(path: Path, name: str, payload: bytes) -> None:
    """Swap one ``.npy`` member of the arrays file for raw bytes, then reseal the checksum."""
    file = arrays_file(path)
    with zipfile.ZipFile(file) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[f"{name}.npy"] = payload
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    seal_arrays(path, read_metadata(path))


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A version 1.0 ``.npy`` header announcing ``shape`` and ``descr``, without the data."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
