"""Router files: a folder with ``router.json`` and the safetensors arrays file it names.

Loading a router someone else wrote cannot run code (no pickle, nothing named in a file is
imported) and checks every value before use (:mod:`.checks`); saving is atomic and saves to one
folder take turns. ``docs/reference/file-formats.md`` describes the files. This module works on
plain values (:class:`RouterState`); ``ClusterRouter.save``/``load`` convert the estimator.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import safetensors
import safetensors.numpy
from langchain_core.embeddings import Embeddings

from langchain_avengers._version import __version__
from langchain_avengers.routing import checks
from langchain_avengers.routing.checks import ArraySpec, InvalidFieldError, RouterContent, refuse
from langchain_avengers.routing.embeddings import WordLlamaEmbeddings, embedder_identity

METADATA_FILE = "router.json"
LOCK_FILE = ".router.lock"
MAX_METADATA_BYTES = 2**20
"""Largest ``router.json``: about 5,000 models' ids (the shipped one: 1.3 kB)."""
SAVE_LOCK_TIMEOUT = 60.0
"""Seconds a save waits for another save to the same folder (one takes well under 1 s)."""
_LOAD_ATTEMPTS = 5
T = TypeVar("T")
_OWN_FILE = re.compile(rf"{checks.ARRAYS_FILE}|\.(arrays|router)-[0-9a-f]{{32}}\.tmp")
_DEFAULT_EMBEDDERS = {WordLlamaEmbeddings(dim=d).identity: d for d in (64, 128, 256)}
_DTYPES = {  # safetensors' dtype codes as numpy names (other codes are refused as they are)
    f"{code}{bits}": f"{name}{bits}"
    for code, name in (("F", "float"), ("I", "int"), ("U", "uint"))
    for bits in (8, 16, 32, 64)
}


class RouterFileError(ValueError):
    """A router file that cannot be used: missing, corrupted, forged, or for another embedder."""


FITTED_ATTRIBUTES = (
    *("n_clusters_", "nearest_clusters_", "cluster_counts_", "models_", "n_features_in_"),
    *("embedder_id_", "n_samples_fit_", "data_fingerprint_"),
)
"""The fitted values of a router a file keeps beside its arrays (``checks.ARRAY_NAMES``)."""


@dataclass
class RouterState:
    """A fitted router as plain values: parameters, fitted values and arrays by attribute name.

    After loading, ``embedder`` is the embedder to route with (None: the default one).
    """

    params: dict[str, Any]
    fitted: dict[str, Any]
    arrays: dict[str, np.ndarray]
    embedder: Embeddings | None = None

    @classmethod
    def of(cls, router: object) -> RouterState:
        """The values of a fitted router (read by attribute name: no router class imported)."""
        params, fitted, arrays = (
            {name: getattr(router, name) for name in names}
            for names in (tuple(checks.Params.model_fields), FITTED_ATTRIBUTES, checks.ARRAY_NAMES)
        )
        return cls(params, fitted, arrays)

    def build(self, estimator: Callable[..., T]) -> T:
        """An estimator made by ``estimator`` (the router class) holding these values."""
        router = estimator(**self.params, embedder=self.embedder)
        for name, value in {**self.fitted, **self.arrays}.items():
            setattr(router, name, value)
        return router


@contextmanager
def _blame(file: Path, prefix: str = "") -> Iterator[None]:
    """Turn a refused value into an error naming ``file`` (a ValueError when saving)."""
    try:
        yield
    except InvalidFieldError as exc:
        msg = f"{prefix}{file}: {exc}"
        raise (ValueError if prefix else RouterFileError)(msg) from None


# ---------------------------------------------------------------- saving


def save_router(path: Path, state: RouterState) -> Path:
    """Write ``state`` to the folder ``path``, refusing what :func:`load_router` would refuse.

    The arrays go to a new file named after their hash, then ``router.json`` is replaced in one
    ``os.replace`` (so a kill leaves the old or the new router), then arrays files no
    ``router.json`` names are removed. Saves hold ``.router.lock``, which the OS releases when a
    process dies, so a staging file a save finds was left by a dead one and is removed.
    """
    fitted, arrays = (
        state.fitted,
        {n: np.ascontiguousarray(state.arrays[n]) for n in checks.ARRAY_NAMES},
    )
    content = {
        "format": checks.FORMAT_NAME,
        "format_version": checks.FORMAT_VERSION,
        "package_version": __version__,
        "params": state.params,
        "fitted": {name: fitted[name] for name in checks.Fitted.model_fields},
        "embedder": {"identity": fitted["embedder_id_"], "dimension": fitted["n_features_in_"]},
        "models": fitted["models_"],
        "n_samples_fit": fitted["n_samples_fit_"],
        "data_fingerprint": fitted["data_fingerprint_"],
    }
    content = json.loads(json.dumps(content, default=_json_value))  # JSON types, as loaded
    arrays[checks.DIGEST_ARRAY] = np.frombuffer(_content_digest(content), dtype=np.uint8)
    with _blame(path, prefix="cannot save this router to "):
        meta = checks.parse_metadata(content, RouterContent, _DEFAULT_EMBEDDERS)
        specs = checks.array_specs(meta)
        for name, array in arrays.items():
            checks.check_array(name, array.dtype.name, array.shape, specs[name])
        checks.check_array_values(arrays, meta.n_samples_fit, len(meta.fitted.cluster_counts_))
    _check_target(path)
    path.mkdir(parents=True, exist_ok=True)
    with _save_lock(path):
        try:
            data = safetensors.numpy.save(arrays)
            digest = hashlib.sha256(data).hexdigest()
            name = f"arrays-{digest[:16]}.safetensors"
            os.replace(_stage(path, "arrays", data), path / name)
            text = json.dumps({**content, "arrays": {"file": name, "sha256": digest}}, indent=2)
            os.replace(_stage(path, "router", f"{text}\n".encode()), path / METADATA_FILE)
            _fsync_directory(path)
        finally:
            _remove_leftovers(path)
    return path


def _json_value(value: object) -> object:
    """Numpy numbers and arrays for ``json.dumps`` (grid searches hand out numpy ints)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return f"<{type(value).__name__} object>"  # refused by the schema, by its field's name


def _content_digest(metadata: dict[str, Any]) -> bytes:
    """SHA-256 of ``router.json`` but its ``arrays`` entry, which the arrays file keeps."""
    content = {k: v for k, v in metadata.items() if k != "arrays"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).digest()


def _check_target(path: Path) -> None:
    """Write only into a new or empty folder, or over this package's own router."""
    if path.exists() and not path.is_dir():
        msg = f"{path}: exists and is not a folder; refusing to overwrite it"
        raise RouterFileError(msg)
    names = {entry.name for entry in path.iterdir()} if path.is_dir() else set()
    if METADATA_FILE in names and _peek(path).get("format") != checks.FORMAT_NAME:
        msg = (
            f"{path / METADATA_FILE}: not a langchain-avengers router file; refusing to "
            "replace it (move it away or save elsewhere)"
        )
        raise RouterFileError(msg)
    others = [n for n in names - {METADATA_FILE, LOCK_FILE} if not _OWN_FILE.fullmatch(n)]
    if others and METADATA_FILE not in names:
        msg = f"{path}: exists and is not a router folder; refusing to write into it"
        raise RouterFileError(msg)


def _peek(path: Path) -> dict[str, Any]:
    """``router.json`` as it is now, or {} if missing or unreadable (for saves to look at)."""
    try:
        value = _read_json(path / METADATA_FILE)
    except RouterFileError:
        return {}
    return value if isinstance(value, dict) else {}


@contextmanager
def _save_lock(path: Path) -> Iterator[None]:
    """Hold ``path/.router.lock`` so saves to one folder take turns."""
    from filelock import FileLock, Timeout

    try:
        with FileLock(path / LOCK_FILE, timeout=SAVE_LOCK_TIMEOUT):
            yield
    except Timeout:
        msg = (
            f"{path}: another process has been saving a router here for "
            f"{SAVE_LOCK_TIMEOUT:g} s (it holds {LOCK_FILE}); try again when it is done"
        )
        raise RouterFileError(msg) from None


def _stage(directory: Path, kind: str, data: bytes) -> Path:
    """A new file under a staging name only saves use, written and flushed to disk."""
    staging = directory / f".{kind}-{uuid.uuid4().hex}.tmp"
    with open(staging, "xb") as handle:  # plain open: the usual permissions, unlike mkstemp
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return staging


def _fsync_directory(path: Path) -> None:
    """Make the renames durable (POSIX; Windows has no directory handles to flush)."""
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_leftovers(path: Path) -> None:
    """Remove staging files (the lock is held: their saves died) and arrays no one names."""
    pointer = _peek(path).get("arrays")
    keep = pointer.get("file") if isinstance(pointer, dict) else None
    for entry in path.iterdir():
        if entry.name != keep and _OWN_FILE.fullmatch(entry.name) and not entry.is_dir():
            with suppress(OSError):  # e.g. Windows, while a reader still has it open
                entry.unlink()


# ---------------------------------------------------------------- loading


def load_router(path: Path, embedder: Embeddings | None) -> RouterState:
    """Read and check a router folder written by :func:`save_router`.

    In order: ``router.json`` (size, schema, agreement), the arrays file's size against what
    ``router.json`` announces, its checksum, its header (by safetensors), the digest of
    ``router.json`` it keeps, each array's dtype and shape, the arrays' values, the embedder.

    Raises:
        RouterFileError: one line naming the file and field; see ``ClusterRouter.load``.
    """
    if path.exists() and not path.is_dir():
        msg = f"{path}: is a file, not a router folder (a folder holding {METADATA_FILE})"
        raise RouterFileError(msg)
    raw, meta, specs, file, data = _read_generation(path)
    if hashlib.sha256(data).hexdigest() != meta.arrays.sha256:
        msg = f"{file}: checksum does not match {METADATA_FILE}; the file is truncated or modified"
        raise RouterFileError(msg)
    try:
        tensors = dict(safetensors.deserialize(data))
    except (safetensors.SafetensorError, ValueError, OverflowError) as exc:
        msg = f"{file}: unreadable router arrays ({exc})"
        raise RouterFileError(msg) from None
    with _blame(file):
        if sorted(tensors) != sorted(specs):
            missing, extra = sorted(set(specs) - set(tensors)), sorted(set(tensors) - set(specs))
            problem = f"missing {missing}" if missing else f"unexpected {extra}"
            refuse("arrays", f"{problem}; expected {sorted(specs)}")
        digest = _decode(
            checks.DIGEST_ARRAY, tensors[checks.DIGEST_ARRAY], specs[checks.DIGEST_ARRAY]
        )
    if digest.tobytes() != _content_digest(raw):
        msg = (
            f"{path / METADATA_FILE}: modified after the router was saved (its checksum in "
            f"{file.name} differs); re-save or refit the router instead of editing it"
        )
        raise RouterFileError(msg)
    with _blame(file):
        arrays = {name: _decode(name, tensors[name], specs[name]) for name in checks.ARRAY_NAMES}
        checks.check_array_values(arrays, meta.n_samples_fit, len(meta.fitted.cluster_counts_))
    resolved = _resolve_embedder(path, meta, embedder)
    fitted = {
        **meta.fitted.model_dump(),
        "cluster_counts_": np.asarray(meta.fitted.cluster_counts_, dtype=np.int64),
        "models_": list(meta.models),
        "n_features_in_": meta.embedder.dimension,
        "embedder_id_": embedder_identity(resolved),
        "data_fingerprint_": meta.data_fingerprint,
        "n_samples_fit_": meta.n_samples_fit,
    }
    params = {**meta.params.model_dump(), "cluster_scales": tuple(meta.params.cluster_scales)}
    plain_default = embedder is None and resolved == WordLlamaEmbeddings()
    return RouterState(params, fitted, arrays, None if plain_default else resolved)


def _read_generation(
    path: Path,
) -> tuple[dict[str, Any], checks.RouterMetadata, dict[str, ArraySpec], Path, bytes]:
    """``router.json`` (raw and checked), the arrays it announces and the file it names, read.

    A save finishing between the two reads removes the arrays file the first read named; the
    ``router.json`` it wrote names another, so read again.
    """
    seen: list[str] = []
    while True:
        raw = _read_json(path / METADATA_FILE)
        with _blame(path / METADATA_FILE):
            meta = checks.parse_metadata(raw, checks.RouterMetadata, _DEFAULT_EMBEDDERS)
            specs = checks.array_specs(meta)
        file, limit = path / meta.arrays.file, checks.max_bytes(specs) + 256 * len(specs) + 4096
        try:
            data = _read_file(file, limit, f"the arrays {METADATA_FILE} announces can take")
        except FileNotFoundError:
            if file.name in seen or len(seen) + 1 == _LOAD_ATTEMPTS:
                msg = f"{file}: missing router arrays"
                if file.name not in seen:
                    msg += f" ({METADATA_FILE} changed {_LOAD_ATTEMPTS} times while loading)"
                raise RouterFileError(msg) from None
            seen.append(file.name)
            continue
        except OSError as exc:
            msg = f"{file}: cannot read router arrays ({exc.strerror or exc})"
            raise RouterFileError(msg) from None
        return raw, meta, specs, file, data


def _read_file(file: Path, limit: int, what: str) -> bytes:
    """A regular file's bytes, refused by its size before reading when larger than ``limit``.

    Devices and pipes are refused (opened without blocking, so a FIFO cannot hang a load).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    with os.fdopen(os.open(file, flags), "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            msg = f"{file}: not a regular file"
            raise RouterFileError(msg)
        size = status.st_size  # read(n) allocates n bytes at once: read only what is there
        data = handle.read(size + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        msg = f"{file}: {max(size, len(data)):,} bytes, more than {what} ({limit:,})"
        raise RouterFileError(msg)
    return data


def _read_json(file: Path) -> Any:
    """Parse a JSON file of at most ``MAX_METADATA_BYTES``."""
    try:
        text = _read_file(file, MAX_METADATA_BYTES, "router metadata may take").decode("utf-8")
        return json.loads(text)
    except RouterFileError:
        raise
    except FileNotFoundError:
        msg = f"{file.parent}: not a router folder ({METADATA_FILE} is missing)"
        raise RouterFileError(msg) from None
    except OSError as exc:
        msg = f"{file}: cannot read router metadata ({exc.strerror or exc})"
        raise RouterFileError(msg) from None
    except (ValueError, RecursionError) as exc:
        msg = f"{file}: corrupted or truncated router metadata ({exc})"
        raise RouterFileError(msg) from None


def _decode(name: str, tensor: dict[str, Any], spec: ArraySpec) -> np.ndarray:
    """One array from safetensors' raw little-endian bytes, once its dtype and shape fit."""
    dtype = _DTYPES.get(tensor["dtype"], tensor["dtype"])
    checks.check_array(name, dtype, tuple(tensor["shape"]), spec)
    return np.frombuffer(tensor["data"], np.dtype(dtype).newbyteorder("<")).reshape(spec[0])


def _resolve_embedder(path: Path, meta: RouterContent, embedder: Embeddings | None) -> Embeddings:
    """The embedder to route with: the one given, if it is the one the router was fitted with."""
    identity, dimension = meta.embedder.identity, meta.embedder.dimension
    if embedder is None and identity in _DEFAULT_EMBEDDERS:
        return WordLlamaEmbeddings(dim=dimension)  # type: ignore[arg-type]
    if embedder is None:
        msg = (
            f"{path}: this router was fitted with embedder {identity!r}; pass that embedder "
            "to ClusterRouter.load(path, embedder=...)"
        )
        raise RouterFileError(msg)
    if (given := embedder_identity(embedder)) != identity:
        msg = (
            f"{path}: this router was fitted with embedder {identity!r} "
            f"(dimension {dimension}), but the embedder given is {given!r}"
        )
        raise RouterFileError(msg)
    return embedder
