"""Helpers for tests that edit router folders as another program would.

``reseal`` recomputes both checksums after an edit, so what is left for the loader to catch is
the edit itself: a forged but self-consistent router folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save

from langchain_avengers.routing.persistence import _content_digest


def read_metadata(path: Path) -> dict:
    return json.loads((path / "router.json").read_text())


def arrays_file(path: Path) -> Path:
    """The arrays file ``router.json`` names."""
    return path / read_metadata(path)["arrays"]["file"]


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    return {name: array.copy() for name, array in load_file(arrays_file(path)).items()}


def seal_arrays(path: Path, meta: dict) -> None:
    """Record the arrays file's checksum in ``router.json`` (written from ``meta``)."""
    digest = hashlib.sha256((path / meta["arrays"]["file"]).read_bytes()).hexdigest()
    meta["arrays"]["sha256"] = digest
    (path / "router.json").write_text(json.dumps(meta))


def digest_array(meta: dict) -> np.ndarray:
    """The digest of ``meta`` as the arrays file keeps it."""
    return np.frombuffer(_content_digest(meta), dtype=np.uint8).copy()


def reseal(
    path: Path,
    change: Callable[[dict], object] = lambda meta: None,
    change_arrays: Callable[[dict], object] = lambda arrays: None,
) -> None:
    """Edit the metadata and arrays, then recompute both checksums."""
    meta, arrays = read_metadata(path), read_arrays(path)
    change(meta)
    change_arrays(arrays)
    arrays["metadata_sha256"] = digest_array(meta)
    (path / meta["arrays"]["file"]).write_bytes(save(arrays))
    seal_arrays(path, meta)


def write_raw_arrays(path: Path, header: dict, data: bytes) -> None:
    """Write a safetensors file of any ``header`` and ``data`` (well-formed or not), sealed."""
    meta = read_metadata(path)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (path / meta["arrays"]["file"]).write_bytes(len(text).to_bytes(8, "little") + text + data)
    seal_arrays(path, meta)


def raw_header(path: Path) -> tuple[dict, bytes]:
    """The header and data of the arrays file, as stored."""
    raw = arrays_file(path).read_bytes()
    size = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + size]), raw[8 + size :]
