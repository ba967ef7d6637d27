"""Router files: a directory with ``router.json`` (readable metadata) and ``arrays.npz``.

No pickle anywhere, and nothing named in a file is imported, so loading a router someone else
wrote cannot run code. The JSON records the format and package versions, fit parameters,
the fitted cluster count and top_p, embedder identity and dimension, model ids and a
fingerprint of the calibration data; the arrays file is checked against its SHA-256.

Format 2 added ``fitted`` (``n_clusters_``, ``top_p_``) when ``n_clusters`` gained ``"auto"``;
format 1 files (an integer ``n_clusters`` and a ``top_p`` no larger) still load, their fitted
values being their parameters. Format 3 added the k-means ensemble and the utility score
(params ``scoring``, ``cluster_scales``; arrays ``cluster_counts_``, ``log_prices_``); older
files load as the single-fit min-max routers they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_avengers._scoring import PRICE_QUANTILES, ensemble_counts
from langchain_avengers._version import __version__
from langchain_avengers.embeddings import WordLlamaEmbeddings, embedder_identity

if TYPE_CHECKING:
    from langchain_avengers.router import ClusterRouter

FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
METADATA_FILE = "router.json"
ARRAYS_FILE = "arrays.npz"
METADATA_DIGEST = "metadata_sha256"
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
ENSEMBLE_ARRAYS = ("cluster_counts_", "log_prices_")
"""Arrays added by format 3."""
SAVED_PARAMS = (
    "n_clusters",
    "top_p",
    "scoring",
    "cluster_scales",
    "cost_scale",
    "cluster_weights",
    "beta",
    "shrinkage",
    "n_init",
    "random_state",
)
_DEFAULT_EMBEDDERS = {WordLlamaEmbeddings(dim=d).identity: d for d in (64, 128, 256)}


class RouterFileError(ValueError):
    """A router file that cannot be used: missing, corrupted, or for another embedder."""


def save_router(router: ClusterRouter, path: Path) -> Path:
    """Write ``router`` to the directory ``path``, replacing it only once fully written."""
    names = ARRAY_ATTRIBUTES + ENSEMBLE_ARRAYS
    arrays = {name: np.asarray(getattr(router, name)) for name in names}
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()  # plain mkdir, so the saved directory gets the usual permissions
    try:
        content = _metadata(router)
        arrays[METADATA_DIGEST] = np.array(_content_digest(content))
        np.savez_compressed(staging / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]
        arrays_info = {"file": ARRAYS_FILE, "sha256": _sha256(staging / ARRAYS_FILE)}
        metadata = {**content, "arrays": arrays_info}
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        _replace_directory(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _metadata(router: ClusterRouter) -> dict[str, Any]:
    return {
        "format": "langchain-avengers/cluster-router",
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "params": {name: _json_ready(getattr(router, name)) for name in SAVED_PARAMS},
        "fitted": {"n_clusters_": router.n_clusters_, "top_p_": router.top_p_},
        "embedder": {"identity": router.embedder_id_, "dimension": router.n_features_in_},
        "models": list(router.models_),
        "n_samples_fit": router.n_samples_fit_,
        "data_fingerprint": router.data_fingerprint_,
        "pool_summary": {
            model: {"mean_score": float(acc), "mean_cost_usd": float(cost)}
            for model, acc, cost in zip(
                router.models_, router.global_accuracy_, router.global_cost_, strict=True
            )
        },
    }


def _json_ready(value: Any) -> Any:
    return [float(v) for v in value] if isinstance(value, (tuple, list)) else value


def _content_digest(metadata: dict[str, Any]) -> str:
    """Hash of the metadata (all but its ``arrays`` entry), kept inside the arrays file.

    The arrays file is checksummed in the metadata and the metadata in the arrays file, so
    an edit to either is caught on load.
    """
    content = {k: v for k, v in metadata.items() if k != "arrays"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _replace_directory(staging: Path, target: Path) -> None:
    """Swap ``staging`` into ``target`` so a reader never sees a half-written router."""
    if not target.exists():
        os.replace(staging, target)
        return
    if not (target / METADATA_FILE).is_file():
        msg = f"{target}: exists and is not a router directory; refusing to overwrite it"
        raise RouterFileError(msg)
    backup = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
    os.replace(target, backup)
    os.replace(staging, target)
    shutil.rmtree(backup, ignore_errors=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_router(cls: type[ClusterRouter], path: Path, embedder: Embeddings | None) -> ClusterRouter:
    """Read and check a router directory written by :func:`save_router`."""
    metadata = _read_metadata(path)
    try:
        return _build_router(cls, path, metadata, embedder)
    except RouterFileError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # valid JSON whose fields have the wrong shape: a hand-edited or corrupted file
        problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        msg = f"{path / METADATA_FILE}: corrupted router metadata ({problem})"
        raise RouterFileError(msg) from None


def _build_router(
    cls: type[ClusterRouter], path: Path, metadata: dict[str, Any], embedder: Embeddings | None
) -> ClusterRouter:
    arrays = _read_arrays(path, metadata)
    stored = metadata["embedder"]
    resolved = _resolve_embedder(path, stored, embedder)
    is_plain_default = embedder is None and resolved == WordLlamaEmbeddings()
    version = metadata["format_version"]
    params = dict(metadata["params"])
    if version < 3:  # fitted before the ensemble and the utility score
        params.update(scoring="minmax", cluster_scales=[1.0])
    params["cluster_scales"] = tuple(params["cluster_scales"])
    router = cls(**params, embedder=None if is_plain_default else resolved)
    for name, array in arrays.items():
        setattr(router, name, array)
    if version == 1:  # the parameters were the fitted values
        fitted = {"n_clusters_": params["n_clusters"], "top_p_": params["top_p"]}
    else:
        fitted = metadata["fitted"]
    router.n_clusters_ = fitted["n_clusters_"]
    router.top_p_ = fitted["top_p_"]
    router.models_ = list(metadata["models"])
    router.n_features_in_ = int(stored["dimension"])
    router.embedder_id_ = embedder_identity(resolved)
    router.data_fingerprint_ = metadata["data_fingerprint"]
    router.n_samples_fit_ = int(metadata["n_samples_fit"])
    if version < 3:
        router.cluster_counts_ = np.array([router.n_clusters_])
        router.log_prices_ = np.zeros(PRICE_QUANTILES)  # unused by the min-max score
    _check_fitted_sizes(router)  # a ValueError names the file above
    _check_shapes(path, router)
    return router


def _read_metadata(path: Path) -> dict[str, Any]:
    file = path / METADATA_FILE
    if not file.is_file():
        msg = f"{path}: not a router directory ({METADATA_FILE} is missing)"
        raise RouterFileError(msg)
    try:
        metadata = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{file}: corrupted or truncated router metadata ({exc})"
        raise RouterFileError(msg) from None
    required = ("format_version", "params", "embedder", "models", "arrays", "data_fingerprint")
    missing = [k for k in required if k not in metadata] if isinstance(metadata, dict) else []
    if not isinstance(metadata, dict) or missing:
        msg = f"{file}: not a router metadata file (missing fields {missing})"
        raise RouterFileError(msg)
    if metadata["format_version"] not in READABLE_VERSIONS:
        msg = (
            f"{file}: router format version {metadata['format_version']!r} is not supported "
            f"by langchain-avengers {__version__} (it reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))})"
        )
        raise RouterFileError(msg)
    return metadata


def _read_arrays(path: Path, metadata: dict[str, Any]) -> dict[str, np.ndarray]:
    file = path / ARRAYS_FILE
    if not file.is_file():
        msg = f"{file}: missing router arrays"
        raise RouterFileError(msg)
    if _sha256(file) != metadata["arrays"].get("sha256"):
        msg = f"{file}: checksum does not match {METADATA_FILE}; the file is truncated or modified"
        raise RouterFileError(msg)
    try:
        with np.load(file, allow_pickle=False) as npz:
            names = ARRAY_ATTRIBUTES + (ENSEMBLE_ARRAYS if metadata["format_version"] >= 3 else ())
            arrays = {name: npz[name] for name in names}
            digest = str(npz[METADATA_DIGEST])
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        msg = f"{file}: unreadable router arrays ({exc})"
        raise RouterFileError(msg) from None
    if digest != _content_digest(metadata):
        msg = (
            f"{path / METADATA_FILE}: modified after the router was saved (its checksum in "
            f"{ARRAYS_FILE} differs); re-save or refit the router instead of editing it"
        )
        raise RouterFileError(msg)
    return arrays


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


def _check_fitted_sizes(router: ClusterRouter) -> None:
    """Parameters valid as at fit, and a fitted cluster count and top_p they could give."""
    router._validate_params(router.n_samples_fit_)
    k, top_p, n = router.n_clusters_, router.top_p_, router.n_samples_fit_
    if not (_is_count(k) and 1 <= k <= n and _is_count(top_p) and 1 <= top_p <= k):
        msg = f"fitted sizes out of range: n_clusters_={k!r}, top_p_={top_p!r} for {n} queries"
        raise ValueError(msg)
    if router.n_clusters not in ("auto", k) or top_p != min(router.top_p, k):
        msg = (
            f"fitted n_clusters_={k!r}, top_p_={top_p!r} do not follow from the parameters "
            f"n_clusters={router.n_clusters!r}, top_p={router.top_p!r}"
        )
        raise ValueError(msg)
    counts = [int(c) for c in np.ravel(router.cluster_counts_)]
    if counts != ensemble_counts(k, router.cluster_scales, n):
        msg = (
            f"fitted cluster_counts_={counts} do not follow from cluster_scales="
            f"{list(router.cluster_scales)} and n_clusters_={k}"
        )
        raise ValueError(msg)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_shapes(path: Path, router: ClusterRouter) -> None:
    k, m, d = int(router.cluster_counts_.sum()), len(router.models_), router.n_features_in_
    expected = {
        "log_prices_": (PRICE_QUANTILES,),
        "cluster_centers_": (k, d),
        "accuracy_": (k, m),
        "cost_": (k, m),
        "n_scored_": (k, m),
        "n_costed_": (k, m),
        "cluster_sizes_": (k,),
        "global_accuracy_": (m,),
        "global_cost_": (m,),
    }
    for name, shape in expected.items():
        actual = getattr(router, name).shape
        if actual != shape:
            msg = f"{path}: array {name!r} has shape {actual}, expected {shape}; file corrupted"
            raise RouterFileError(msg)
