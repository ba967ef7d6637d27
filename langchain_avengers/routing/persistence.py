"""Router files: a directory with ``router.json`` (readable metadata) and the arrays it names.

No pickle anywhere, and nothing named in a file is imported, so loading a router someone else
wrote cannot run code. The JSON records the format and package versions, fit parameters, the
fitted cluster count and nearest_clusters, embedder identity and dimension, model ids, a
fingerprint of
the calibration data, and the name and SHA-256 of the arrays file; the arrays file holds a
hash of the JSON, so an edit to either is caught. Every value is then checked
(:mod:`._router_checks`): sizes and dtypes from the ``.npy`` headers before anything is
decoded, then ids, parameters and statistics, so a forged file is refused with one line.

Saving (format 3) never leaves the path without a router: the arrays go to a new file named
after their hash (``arrays-<sha256 prefix>.npz``), then ``router.json`` is replaced in one
``os.replace``, then the arrays no ``router.json`` names are removed. A kill at any moment leaves
the old or the new router. Saves to one directory take turns on ``.router.lock`` (released by
the OS when a saving process dies), so a save removes any staging file it finds: only a dead
save can have left it. Readers take no lock: they read ``router.json``, open the arrays file it
names, and read ``router.json`` again if a save removed that file in between. Only the router's
own files are touched; anything else in the directory stays.

Format 4 added the k-means ensemble and the utility score (params ``scoring`` and
``cluster_scales``, ``fitted.cluster_counts_`` and the ``log_prices_`` array); files of
formats 1-3 load as the single-fit min-max routers they were. Format 3 introduced the file
layout above. Format 2 added ``fitted`` (``n_clusters_``, ``nearest_clusters_``) when ``n_clusters``
gained ``"auto"``; format 1 files (an integer ``n_clusters`` and a ``nearest_clusters`` no larger)
still
load, their fitted values being their parameters. Formats 1 and 2 keep their arrays in
``arrays.npz``.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
import stat
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_avengers._version import __version__
from langchain_avengers.routing.checks import (
    DIGEST_MEMBER,
    ENSEMBLE_VERSION,
    FORMAT_NAME,
    SAVED_PARAMS,
    InvalidFieldError,
    arrays_pointer,
    check_array,
    check_array_values,
    check_format,
    check_header,
    check_members,
    check_metadata_values,
    check_pool_summary,
    declared_specs,
    decode,
    max_file_bytes,
    with_defaults,
)
from langchain_avengers.routing.embeddings import WordLlamaEmbeddings, embedder_identity
from langchain_avengers.routing.scoring import PRICE_QUANTILES

if TYPE_CHECKING:
    from langchain_avengers.routing.router import ClusterRouter

FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
METADATA_FILE = "router.json"
LOCK_FILE = ".router.lock"
ARRAY_ATTRIBUTES = (
    "cluster_centers_",
    "accuracy_",
    "cost_",
    "n_scored_",
    "n_costed_",
    "cluster_sizes_",
    "global_accuracy_",
    "global_cost_",
)
MAX_METADATA_BYTES = 2**20
"""Largest ``router.json``: about 5,000 models' ids and summaries (the shipped one: 1.3 kB)."""
SAVE_LOCK_TIMEOUT = 60.0
"""Seconds a save waits for another save to the same directory (one takes well under 1 s)."""
_LOAD_ATTEMPTS = 5
_ARRAYS_NAMES = {
    1: re.compile(r"arrays\.npz"),
    2: re.compile(r"arrays\.npz"),
    3: re.compile(r"arrays-[0-9a-f]{16}\.npz"),
    4: re.compile(r"arrays-[0-9a-f]{16}\.npz"),
}
_ANY_ARRAYS = re.compile(r"arrays(-[0-9a-f]{16})?\.npz")
_STAGING = re.compile(r"\.(arrays|router)-[0-9a-f]{32}\.tmp")
_CHUNK = 2**20
_DEFAULT_EMBEDDERS = {WordLlamaEmbeddings(dim=d).identity: d for d in (64, 128, 256)}


class RouterFileError(ValueError):
    """A router file that cannot be used: missing, corrupted, forged, or for another embedder."""


@contextmanager
def _blame(file: Path) -> Iterator[None]:
    """Turn a refused value into a :class:`RouterFileError` naming ``file``."""
    try:
        yield
    except InvalidFieldError as exc:
        msg = f"{file}: {exc}"
        raise RouterFileError(msg) from None


# ---------------------------------------------------------------- saving


def save_router(router: ClusterRouter, path: Path) -> Path:
    """Write ``router`` to the directory ``path``; see the module docstring for the guarantees."""
    content = _metadata(router)
    names = (*ARRAY_ATTRIBUTES, "log_prices_")
    arrays = {name: np.asarray(getattr(router, name)) for name in names}
    _check_savable(path, content, arrays)
    _check_target(path)
    path.mkdir(parents=True, exist_ok=True)
    with _save_lock(path):
        try:
            arrays[DIGEST_MEMBER] = np.array(_content_digest(content))
            name, digest = _write_arrays(path, arrays)
            metadata = {**content, "arrays": {"file": name, "sha256": digest}}
            text = json.dumps(metadata, indent=2) + "\n"
            staged = _stage(path, "router", lambda handle: handle.write(text.encode()))
            os.replace(staged, path / METADATA_FILE)  # the switch: readers now get the new one
            _fsync_directory(path)
        finally:
            _remove_leftovers(path, keep=_current_arrays(path))
    return path


def _write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> tuple[str, str]:
    """Write the arrays under a name of their own; that name and their SHA-256."""

    def write(handle: IO[bytes]) -> None:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]

    staged = _stage(path, "arrays", write)
    with open(staged, "rb") as handle:
        digest = _sha256(handle)
    name = f"arrays-{digest[:16]}.npz"
    os.replace(staged, path / name)
    return name, digest


def _metadata(router: ClusterRouter) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "params": {name: _json_scalar(getattr(router, name)) for name in SAVED_PARAMS},
        "fitted": {
            "n_clusters_": _json_scalar(router.n_clusters_),
            "nearest_clusters_": _json_scalar(router.nearest_clusters_),
            "cluster_counts_": [int(c) for c in np.ravel(router.cluster_counts_)],
        },
        "embedder": {
            "identity": router.embedder_id_,
            "dimension": _json_scalar(router.n_features_in_),
        },
        "models": list(router.models_),
        "n_samples_fit": _json_scalar(router.n_samples_fit_),
        "data_fingerprint": router.data_fingerprint_,
        "pool_summary": {
            model: {"mean_score": float(acc), "mean_cost_usd": float(cost)}
            for model, acc, cost in zip(
                router.models_, router.global_accuracy_, router.global_cost_, strict=True
            )
        },
    }


def _json_scalar(value: object) -> object:
    """Numpy numbers as JSON numbers (grid searches hand out numpy ints), sequences as lists."""
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_json_scalar(v) for v in value]
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _check_savable(path: Path, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Refuse to write what :func:`load_router` would refuse to read."""
    try:
        specs = declared_specs(metadata)
        fitted = check_metadata_values(metadata, _DEFAULT_EMBEDDERS)
        for name, array in arrays.items():
            check_array(name, array.dtype, array.shape, specs[name])
        check_array_values(arrays, metadata["n_samples_fit"], fitted["n_fits"])
    except InvalidFieldError as exc:
        msg = f"cannot save this router to {path}: {exc}"
        raise ValueError(msg) from None


def _content_digest(metadata: dict[str, Any]) -> str:
    """Hash of the metadata (all but its ``arrays`` entry), kept inside the arrays file.

    The arrays file is checksummed in the metadata and the metadata in the arrays file, so
    an edit to either is caught on load.
    """
    content = {k: v for k, v in metadata.items() if k != "arrays"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _check_target(path: Path) -> None:
    """Write only into a new or empty directory, or over this package's own router."""
    if path.exists() and not path.is_dir():
        msg = f"{path}: exists and is not a directory; refusing to overwrite it"
        raise RouterFileError(msg)
    if not path.is_dir():
        return
    names = [entry.name for entry in path.iterdir()]
    if METADATA_FILE in names:
        try:
            ours = _read_json(path / METADATA_FILE).get("format") == FORMAT_NAME
        except (RouterFileError, AttributeError):
            ours = False
        if not ours:
            msg = (
                f"{path / METADATA_FILE}: not a langchain-avengers router file; refusing to "
                "replace it (move it away or save elsewhere)"
            )
            raise RouterFileError(msg)
    elif any(not (_is_own_file(name) or name == LOCK_FILE) for name in names):
        msg = f"{path}: exists and is not a router directory; refusing to write into it"
        raise RouterFileError(msg)


def _is_own_file(name: str) -> bool:
    """An arrays file or a staging file of a save, which saves may remove."""
    return bool(_ANY_ARRAYS.fullmatch(name) or _STAGING.fullmatch(name))


@contextmanager
def _save_lock(path: Path) -> Iterator[None]:
    """Hold ``path/.router.lock`` so saves to one directory take turns."""
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


def _stage(directory: Path, kind: str, write: Callable[[IO[bytes]], object]) -> Path:
    """A new file under a staging name only saves use, written and flushed to disk."""
    staging = directory / f".{kind}-{uuid.uuid4().hex}.tmp"
    with open(staging, "xb") as handle:  # plain open: the usual permissions, unlike mkstemp
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    return staging


def _fsync_directory(path: Path) -> None:
    """Make the renames durable (POSIX; Windows has no directory handles to flush)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _current_arrays(path: Path) -> str | None:
    """The arrays file ``router.json`` names now, or None if it names none readable."""
    try:
        name = _read_json(path / METADATA_FILE).get("arrays", {}).get("file")
    except (RouterFileError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _remove_leftovers(path: Path, keep: str | None) -> None:
    """Remove staging files (the lock is held: their saves died) and unnamed arrays files."""
    for entry in path.iterdir():
        if entry.name != keep and _is_own_file(entry.name) and not entry.is_dir():
            with suppress(OSError):  # e.g. Windows, while a reader still has it open
                entry.unlink()


# ---------------------------------------------------------------- loading


def load_router(cls: type[ClusterRouter], path: Path, embedder: Embeddings | None) -> ClusterRouter:
    """Read and check a router directory written by :func:`save_router`."""
    try:
        metadata, arrays_file, handle = _open_generation(path)
        with handle:
            fitted, arrays = _read_checked(path, arrays_file, handle, metadata)
        return _build_router(cls, path, metadata, fitted, arrays, embedder)
    except RouterFileError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # a check the checks module lacks; still one line naming the file
        problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        msg = f"{path / METADATA_FILE}: corrupted router metadata ({problem})"
        raise RouterFileError(msg) from None


def _open_generation(path: Path) -> tuple[dict[str, Any], Path, IO[bytes]]:
    """``router.json`` and an open handle on the arrays file it names.

    A save finishing between the two reads removes the arrays file the first read named; the
    ``router.json`` it wrote names another, so read again. On POSIX an open handle outlives
    the file's removal, so what is opened stays readable.
    """
    seen: list[str] = []
    while True:
        metadata = _read_metadata(path)
        with _blame(path / METADATA_FILE):
            name, _ = arrays_pointer(metadata, _ARRAYS_NAMES[metadata["format_version"]])
        try:
            return metadata, path / name, _open_regular(path / name)
        except FileNotFoundError:
            if name in seen or len(seen) + 1 == _LOAD_ATTEMPTS:
                msg = f"{path / name}: missing router arrays"
                if name not in seen:
                    msg += f" (router.json changed {_LOAD_ATTEMPTS} times while loading)"
                raise RouterFileError(msg) from None
            seen.append(name)
        except OSError as exc:
            msg = f"{path / name}: cannot read router arrays ({exc.strerror or exc})"
            raise RouterFileError(msg) from None


def _open_regular(file: Path) -> IO[bytes]:
    """Open for reading, refusing devices and pipes (without blocking on a FIFO)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    handle = os.fdopen(os.open(file, flags), "rb")
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        msg = f"{file}: not a regular file"
        raise RouterFileError(msg)
    return handle


def _read_json(file: Path) -> Any:
    """Parse a JSON file of at most ``MAX_METADATA_BYTES``."""
    try:
        with _open_regular(file) as handle:
            size = os.fstat(handle.fileno()).st_size
            # read(n) allocates n bytes up front: read what is there, and only if small
            raw = handle.read(size + 1) if size <= MAX_METADATA_BYTES else b""
    except FileNotFoundError:
        msg = f"{file.parent}: not a router directory ({METADATA_FILE} is missing)"
        raise RouterFileError(msg) from None
    except OSError as exc:
        msg = f"{file}: cannot read router metadata ({exc.strerror or exc})"
        raise RouterFileError(msg) from None
    if size > MAX_METADATA_BYTES or len(raw) > MAX_METADATA_BYTES:
        msg = f"{file}: larger than {MAX_METADATA_BYTES:,} bytes; not router metadata"
        raise RouterFileError(msg)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        msg = f"{file}: corrupted or truncated router metadata ({exc})"
        raise RouterFileError(msg) from None


def _read_metadata(path: Path) -> dict[str, Any]:
    file = path / METADATA_FILE
    metadata = _read_json(file)
    with _blame(file):
        return check_format(metadata, READABLE_VERSIONS)


def _read_checked(
    path: Path, file: Path, handle: IO[bytes], metadata: dict[str, Any]
) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """The fitted sizes and the arrays, each value checked before it is used.

    In order: the sizes ``router.json`` announces, the arrays file's size against them, its
    checksum, the hash of ``router.json`` kept in it, every value of ``router.json``, every
    member's ``.npy`` header; only then are the arrays decoded, and their values checked.
    """
    meta_file = path / METADATA_FILE
    view = with_defaults(metadata)
    with _blame(meta_file):
        specs = declared_specs(view)
    size, limit = os.fstat(handle.fileno()).st_size, max_file_bytes(specs)
    if size > limit:
        msg = (
            f"{file}: {size:,} bytes, more than the arrays {METADATA_FILE} announces can take "
            f"({limit:,}); the file is not this router's"
        )
        raise RouterFileError(msg)
    if _sha256(handle) != metadata["arrays"]["sha256"]:
        msg = f"{file}: checksum does not match {METADATA_FILE}; the file is truncated or modified"
        raise RouterFileError(msg)
    handle.seek(0)
    with _unreadable_as_error(file), zipfile.ZipFile(handle) as archive, _blame(file):
        check_members(archive, specs)
        check_header(archive, DIGEST_MEMBER, specs[DIGEST_MEMBER])
        if str(decode(archive, DIGEST_MEMBER)) != _content_digest(metadata):
            msg = (
                f"{meta_file}: modified after the router was saved (its checksum in "
                f"{file.name} differs); re-save or refit the router instead of editing it"
            )
            raise RouterFileError(msg)
        with _blame(meta_file):
            fitted = check_metadata_values(view, _DEFAULT_EMBEDDERS)
        names = [name for name in specs if name != DIGEST_MEMBER]
        for name in names:
            check_header(archive, name, specs[name])
        arrays = {name: decode(archive, name) for name in names}
        check_array_values(arrays, metadata["n_samples_fit"], fitted["n_fits"])
    return fitted, arrays


@contextmanager
def _unreadable_as_error(file: Path) -> Iterator[None]:
    """A zip or ``.npy`` that zipfile or numpy cannot parse, as one line naming the file."""
    try:
        yield
    except RouterFileError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        msg = f"{file}: unreadable router arrays ({exc})"
        raise RouterFileError(msg) from None


def _sha256(handle: IO[bytes]) -> str:
    """SHA-256 of the rest of ``handle``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _build_router(
    cls: type[ClusterRouter],
    path: Path,
    metadata: dict[str, Any],
    fitted: dict[str, int],
    arrays: dict[str, np.ndarray],
    embedder: Embeddings | None,
) -> ClusterRouter:
    meta_file = path / METADATA_FILE
    with _blame(meta_file):
        if "pool_summary" in metadata:
            check_pool_summary(
                metadata["pool_summary"],
                metadata["models"],
                arrays["global_accuracy_"],
                arrays["global_cost_"],
            )
    stored = metadata["embedder"]
    resolved = _resolve_embedder(path, stored, embedder)
    is_plain_default = embedder is None and resolved == WordLlamaEmbeddings()
    view = with_defaults(metadata)
    params = {**view["params"], "cluster_scales": tuple(view["params"]["cluster_scales"])}
    router = cls(**params, embedder=None if is_plain_default else resolved)
    try:
        router._validate_params(metadata["n_samples_fit"])
    except ValueError as exc:
        msg = f"{meta_file}: field 'params': {exc}"
        raise RouterFileError(msg) from None
    for name, array in arrays.items():
        setattr(router, name, array)
    if metadata["format_version"] < ENSEMBLE_VERSION:  # one fit, min-max: prices unused
        router.log_prices_ = np.zeros(PRICE_QUANTILES)
    counts = view["fitted"]["cluster_counts_"] if "fitted" in view else [fitted["n_clusters_"]]
    router.cluster_counts_ = np.asarray(counts, dtype=np.int64)
    router.n_clusters_ = fitted["n_clusters_"]
    router.nearest_clusters_ = fitted["nearest_clusters_"]
    router.models_ = list(metadata["models"])
    router.n_features_in_ = stored["dimension"]
    router.embedder_id_ = embedder_identity(resolved)
    router.data_fingerprint_ = metadata["data_fingerprint"]
    router.n_samples_fit_ = metadata["n_samples_fit"]
    return router


def _resolve_embedder(
    path: Path, stored: dict[str, Any], embedder: Embeddings | None
) -> Embeddings:
    identity = stored["identity"]
    if embedder is None:
        if identity not in _DEFAULT_EMBEDDERS:
            msg = (
                f"{path}: this router was fitted with embedder {identity!r}; pass that embedder "
                "to ClusterRouter.load(path, embedder=...)"
            )
            raise RouterFileError(msg)
        return WordLlamaEmbeddings(dim=_DEFAULT_EMBEDDERS[identity])  # type: ignore[arg-type]
    given = embedder_identity(embedder)
    if given != identity:
        msg = (
            f"{path}: this router was fitted with embedder {identity!r} "
            f"(dimension {stored['dimension']}), but the embedder given is {given!r}"
        )
        raise RouterFileError(msg)
    return embedder
