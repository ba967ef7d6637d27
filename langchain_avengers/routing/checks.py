"""What a router file must hold before a router is built from it.

Checksums catch accidental damage; these checks catch files written or edited by someone else
with their checksums recomputed. Every metadata value is checked for type and range, and every
array for dtype and shape from its ``.npy`` header before anything is decoded, then for finite
values in range, so a bad file is refused with one line naming the field instead of failing
later inside numpy, or routing to a "model id" that is a dict.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeGuard

import numpy as np

from langchain_avengers.routing.kmeans import ensemble_counts
from langchain_avengers.routing.scoring import PRICE_QUANTILES

FORMAT_NAME = "langchain-avengers/cluster-router"
MAX_ARRAY_BYTES = 128 * 2**20
"""Largest decoded size of a router's arrays, so of what a forged file can make loading decode:
about 4,000 clusters of 4,096-d embeddings (``n_clusters="auto"`` fits at most 60)."""
MAX_MODEL_ID_LENGTH = 256
CENTROID_NORM_TOLERANCE = 1e-3
DIGEST_MEMBER = "metadata_sha256"
SAVED_PARAMS = (
    "n_clusters",
    "nearest_clusters",
    "scoring",
    "cluster_scales",
    "cost_scale",
    "cluster_weights",
    "beta",
    "shrinkage",
    "n_init",
    "random_state",
)
MAX_ENSEMBLE_FITS = 16
ENSEMBLE_VERSION = 4
"""The format that added the k-means ensemble and the utility score."""
PRE_ENSEMBLE_PARAMS = {"scoring": "minmax", "cluster_scales": [1.0]}
"""What files older than format 4 were fitted with: one k-means fit, min-max scores."""
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FINGERPRINT = re.compile(r"[0-9a-f]{1,64}")


class InvalidFieldError(ValueError):
    """A value in a router file that a router cannot use; the message names the field."""


def refuse(where: str, problem: str) -> NoReturn:
    """Raise :class:`InvalidFieldError` for ``where`` (a field, array or member)."""
    msg = f"{where}: {problem}"
    raise InvalidFieldError(msg)


def describe(value: object) -> str:
    """A short ``repr`` for messages: escapes control characters, never floods a terminal."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= 60 else f"{text[:57]}..."


def is_count(value: object) -> TypeGuard[int]:
    """A JSON integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------- before the arrays are opened


def check_format(metadata: object, readable_versions: tuple[int, ...]) -> dict[str, Any]:
    """A JSON object in this package's router format, of a version this package reads."""
    required = ("format_version", "params", "embedder", "models", "arrays", "data_fingerprint")
    if not isinstance(metadata, dict):
        refuse("top level", f"expected a JSON object, got {type(metadata).__name__}")
    missing = [key for key in required if key not in metadata]
    if missing:
        refuse("top level", f"not a router metadata file (missing fields {missing})")
    if metadata.get("format", FORMAT_NAME) != FORMAT_NAME:
        refuse("field 'format'", f"expected {FORMAT_NAME!r}, got {describe(metadata['format'])}")
    version = metadata["format_version"]
    if not is_count(version) or version not in readable_versions:
        refuse(
            "field 'format_version'",
            f"router format version {describe(version)} is not supported (this version of "
            f"langchain-avengers reads {', '.join(map(str, readable_versions))})",
        )
    return metadata


def arrays_pointer(metadata: Mapping[str, Any], allowed_name: re.Pattern[str]) -> tuple[str, str]:
    """The arrays file named in ``router.json`` (a bare name in the directory) and its SHA-256."""
    pointer = metadata["arrays"]
    name = pointer.get("file") if isinstance(pointer, dict) else None
    digest = pointer.get("sha256") if isinstance(pointer, dict) else None
    if not isinstance(name, str) or not allowed_name.fullmatch(name):
        refuse("field 'arrays.file'", f"expected {allowed_name.pattern!r}, got {describe(name)}")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        refuse("field 'arrays.sha256'", f"expected 64 hex digits, got {describe(digest)}")
    return name, digest


def _field(metadata: Mapping[str, Any], dotted: str) -> object:
    """``metadata["a"]["b"]`` for ``"a.b"``, or None where a level is missing or not an object."""
    value: object = metadata
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def with_defaults(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``router.json`` as format 4 says it: older files get the ensemble fields they imply.

    Files before format 4 hold one k-means fit scored by min-max; their ``params`` gain
    ``scoring``/``cluster_scales`` and their ``fitted`` (or, in format 1, their parameters)
    a ``cluster_counts_`` of one fit. The file itself (and its checksum) is left alone.
    """
    view = dict(metadata)
    version = view.get("format_version")
    if not is_count(version) or version >= ENSEMBLE_VERSION:
        return view
    if isinstance(view.get("params"), dict):
        view["params"] = {**PRE_ENSEMBLE_PARAMS, **view["params"]}
    fitted = view.get("fitted")
    if version > 1 and isinstance(fitted, dict):
        view["fitted"] = {"cluster_counts_": [fitted.get("n_clusters_")], **fitted}
    return view


def _fitted_cluster_field(metadata: Mapping[str, Any]) -> str:
    """Where the fitted cluster count is: format 1 stored only the (integer) parameter."""
    return "fitted.n_clusters_" if metadata["format_version"] > 1 else "params.n_clusters"


def _size(metadata: Mapping[str, Any], dotted: str) -> int:
    value = _field(metadata, dotted)
    if not is_count(value) or value < 1:
        refuse(f"field {dotted!r}", f"expected an integer >= 1, got {describe(value)}")
    return value


def declared_specs(metadata: Mapping[str, Any]) -> dict[str, ArraySpec]:
    """The arrays ``router.json`` announces, refused if they could not fit in memory."""
    models = metadata["models"]
    if not isinstance(models, list) or not models:
        refuse("field 'models'", f"expected a non-empty list of model ids, got {describe(models)}")
    cluster_field = _fitted_cluster_field(metadata)
    k, d = _size(metadata, cluster_field), _size(metadata, "embedder.dimension")
    rows = sum(_cluster_counts(metadata, k))
    ensemble = metadata["format_version"] >= ENSEMBLE_VERSION
    specs = array_specs(rows, len(models), d, ensemble=ensemble)
    total = sum(spec.max_bytes for spec in specs.values())
    if total > MAX_ARRAY_BYTES:
        refuse(
            f"fields {cluster_field!r}, 'models', 'embedder.dimension'",
            f"{rows} clusters, {len(models)} models and {d} dimensions need {total:,} bytes of "
            f"arrays, more than a router file may hold ({MAX_ARRAY_BYTES:,})",
        )
    return specs


@dataclass(frozen=True)
class ArraySpec:
    """The dtypes an array may have, and its exact shape."""

    shape: tuple[int, ...]
    kinds: str
    itemsizes: tuple[int, ...]
    label: str

    def accepts(self, dtype: np.dtype) -> bool:
        """Whether an array of ``dtype`` may be stored under this spec."""
        return dtype.kind in self.kinds and dtype.itemsize in self.itemsizes and not dtype.fields

    @property
    def max_bytes(self) -> int:
        """The largest size in bytes an array of this spec may have."""
        return math.prod(self.shape) * max(self.itemsizes)


def _cluster_counts(metadata: Mapping[str, Any], n_clusters: int) -> list[int]:
    """Clusters of each k-means fit, as ``fitted.cluster_counts_`` states (one fit before 4)."""
    if metadata["format_version"] < ENSEMBLE_VERSION:
        return [n_clusters]
    counts = _field(metadata, "fitted.cluster_counts_")
    if (
        not isinstance(counts, list)
        or not 1 <= len(counts) <= MAX_ENSEMBLE_FITS
        or not all(is_count(c) and c >= 1 for c in counts)
    ):
        refuse(
            "field 'fitted.cluster_counts_'",
            f"expected 1 to {MAX_ENSEMBLE_FITS} integers >= 1, got {describe(counts)}",
        )
    return counts


def array_specs(
    n_clusters: int, n_models: int, dimension: int, *, ensemble: bool = True
) -> dict[str, ArraySpec]:
    """Every member of a router's ``.npz``: float32/64 statistics, integer counts, the digest.

    ``n_clusters`` counts the clusters of every k-means fit; ``ensemble`` (format 4 on) adds
    the alpha -> log price table of the utility score.
    """
    k, m, d = n_clusters, n_models, dimension
    floats = ("f", (4, 8), "float32 or float64")
    counts = ("iu", (1, 2, 4, 8), "an integer dtype")
    prices = {"log_prices_": ArraySpec((PRICE_QUANTILES,), *floats)} if ensemble else {}
    return {
        **prices,
        "cluster_centers_": ArraySpec((k, d), *floats),
        "accuracy_": ArraySpec((k, m), *floats),
        "cost_": ArraySpec((k, m), *floats),
        "n_scored_": ArraySpec((k, m), *counts),
        "n_costed_": ArraySpec((k, m), *counts),
        "cluster_sizes_": ArraySpec((k,), *counts),
        "global_accuracy_": ArraySpec((m,), *floats),
        "global_cost_": ArraySpec((m,), *floats),
        DIGEST_MEMBER: ArraySpec((), "U", (4 * 64,), "<U64"),
    }


def max_file_bytes(specs: Mapping[str, ArraySpec]) -> int:
    """Largest ``.npz`` these arrays can make: stored or deflated, plus zip and npy headers."""
    data = sum(spec.max_bytes for spec in specs.values())
    return data + data // 100 + 4096 * (len(specs) + 1)


# ---------------------------------------------------------------- the .npz, header by header


def check_members(archive: zipfile.ZipFile, specs: Mapping[str, ArraySpec]) -> None:
    """Exactly the expected members, once each, stored or deflated, unencrypted."""
    found = [info.filename for info in archive.infolist()]
    expected = sorted(f"{name}.npy" for name in specs)
    if sorted(found) != expected:
        missing = sorted(set(expected) - set(found))
        extra = sorted({f for f in found if f not in expected or found.count(f) > 1})
        problem = f"missing {missing}" if missing else f"unexpected or repeated {extra}"
        refuse("members", f"{problem}; expected {expected}")
    for info in archive.infolist():
        usual = info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        if info.flag_bits & 0x1 or not usual:
            refuse(f"member {info.filename!r}", "encrypted or unusually compressed")


def check_header(archive: zipfile.ZipFile, name: str, spec: ArraySpec) -> None:
    """Dtype, shape and stored size from the member's ``.npy`` header, nothing decoded."""
    info = archive.getinfo(f"{name}.npy")
    where = f"array {name!r}"
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            refuse(where, f"unsupported .npy format version {version}")
        header_size = member.tell()
    check_array(name, dtype, tuple(shape), spec)
    if info.file_size != header_size + math.prod(shape) * dtype.itemsize:
        refuse(where, f"stores {info.file_size} bytes, not what its header says")


def check_array(name: str, dtype: np.dtype, shape: tuple[int, ...], spec: ArraySpec) -> None:
    """An array's dtype and shape, as its ``.npy`` header or the router about to be saved says."""
    if not spec.accepts(dtype):
        refuse(f"array {name!r}", f"has dtype {dtype}, expected {spec.label}")
    if shape != spec.shape:
        refuse(f"array {name!r}", f"has shape {shape}, expected {spec.shape}")


def decode(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """One member's array, once :func:`check_header` has accepted it."""
    with archive.open(f"{name}.npy") as member:
        return np.lib.format.read_array(member, allow_pickle=False)


# ---------------------------------------------------------------- values


def model_id_problem(model: object) -> str | None:
    """Why ``model`` is not a safe model id, or None.

    OpenRouter ids contain ``/`` (``meta-llama/llama-3.1-8b-instruct``) and ``:`` (``:free``),
    so those stay; refused are what could mislead a terminal, a log or a path built from the
    id: control and invisible characters (escape codes), line separators, backslashes, empty,
    ``.`` or ``..`` parts, and surrounding whitespace.
    """
    if not isinstance(model, str) or not model:
        return "expected a non-empty string"
    if len(model) > MAX_MODEL_ID_LENGTH:
        return f"longer than {MAX_MODEL_ID_LENGTH} characters"
    if any(unicodedata.category(c)[0] == "C" or c in "\u2028\u2029" for c in model):
        return "holds control or invisible characters"
    if model != model.strip():
        return "has leading or trailing whitespace"
    if "\\" in model or any(part in ("", ".", "..") for part in model.split("/")):
        return "holds a backslash, or an empty, '.' or '..' part between slashes"
    return None


def check_model_ids(models: list[Any]) -> None:
    """Unique, safe model ids (see :func:`model_id_problem`)."""
    seen: dict[str, int] = {}
    for i, model in enumerate(models):
        problem = model_id_problem(model)
        if problem is None and model in seen:
            problem = f"repeats models[{seen[model]}]"
        if problem:
            refuse(f"field 'models[{i}]'", f"{problem}, got {describe(model)}")
        seen[model] = i


def check_text(value: object, where: str, pattern: re.Pattern[str] | None = None) -> None:
    """A short printable string (matching ``pattern`` when given)."""
    if (
        isinstance(value, str)
        and 0 < len(value) <= 512
        and value.isprintable()
        and (pattern is None or pattern.fullmatch(value))
    ):
        return
    expected = f"a string matching {pattern.pattern!r}" if pattern else "a printable string"
    refuse(f"field {where!r}", f"expected {expected}, got {describe(value)}")


_PARAM_CHECKS: dict[str, tuple[Any, str]] = {
    "n_clusters": (lambda v: v == "auto" or (is_count(v) and v >= 1), "'auto' or an integer >= 1"),
    "nearest_clusters": (lambda v: is_count(v) and v >= 1, "an integer >= 1"),
    "scoring": (lambda v: v in ("utility", "minmax"), "'utility' or 'minmax'"),
    "cluster_scales": (
        lambda v: (
            isinstance(v, list)
            and 1 <= len(v) <= MAX_ENSEMBLE_FITS
            and all(_is_finite_number(x) and x > 0 for x in v)
        ),
        f"a list of 1 to {MAX_ENSEMBLE_FITS} positive numbers",
    ),
    "cost_scale": (lambda v: v in ("linear", "log"), "'linear' or 'log'"),
    "cluster_weights": (lambda v: v in ("uniform", "softmax"), "'uniform' or 'softmax'"),
    "beta": (lambda v: _is_finite_number(v) and v >= 0, "a finite number >= 0"),
    "shrinkage": (lambda v: _is_finite_number(v) and v >= 0, "a finite number >= 0"),
    "n_init": (lambda v: v == "auto" or (is_count(v) and v >= 1), "'auto' or an integer >= 1"),
    "random_state": (
        lambda v: v is None or (is_count(v) and 0 <= v < 2**32),
        "null or an integer in [0, 2**32)",
    ),
}


def check_metadata_values(
    metadata: Mapping[str, Any], known_dimensions: Mapping[str, int]
) -> dict[str, int]:
    """Everything ``router.json`` says beyond its format and sizes; the fitted sizes.

    ``metadata`` as :func:`with_defaults` gives it; the result has ``n_clusters_``,
    ``nearest_clusters_`` and ``n_fits`` (the k-means fits of the ensemble).
    """
    check_model_ids(metadata["models"])
    params = check_params(metadata["params"])
    n_samples = metadata.get("n_samples_fit")
    if not is_count(n_samples) or n_samples < 1:
        refuse("field 'n_samples_fit'", f"expected an integer >= 1, got {describe(n_samples)}")
    if metadata["format_version"] > 1:
        fitted = metadata.get("fitted")
    else:  # format 1: the parameters were the fitted values
        fitted = {
            "n_clusters_": params["n_clusters"],
            "nearest_clusters_": params["nearest_clusters"],
            "cluster_counts_": [params["n_clusters"]],
        }
    k, nearest_clusters = check_fitted(params, fitted, n_samples)
    counts = fitted["cluster_counts_"] if isinstance(fitted, dict) else None
    if counts != ensemble_counts(k, params["cluster_scales"], n_samples):
        refuse(
            "field 'fitted.cluster_counts_'",
            f"{describe(counts)} does not follow from cluster_scales={params['cluster_scales']} "
            f"and n_clusters_={k}",
        )
    check_embedder(metadata["embedder"], known_dimensions)
    check_text(metadata["data_fingerprint"], "data_fingerprint", _FINGERPRINT)
    if "package_version" in metadata:
        check_text(metadata["package_version"], "package_version")
    return {"n_clusters_": k, "nearest_clusters_": nearest_clusters, "n_fits": len(counts)}


def check_params(params: object) -> dict[str, Any]:
    """Every saved parameter present, of the right type and range (nothing else)."""
    if not isinstance(params, dict):
        refuse("field 'params'", f"expected a JSON object, got {describe(params)}")
    unknown = sorted(set(params) - set(SAVED_PARAMS), key=str)
    missing = [name for name in SAVED_PARAMS if name not in params]
    if unknown or missing:
        problem = f"unknown parameter(s) {unknown}" if unknown else f"missing {missing}"
        refuse("field 'params'", problem)
    for name, (is_valid, expected) in _PARAM_CHECKS.items():
        if not is_valid(params[name]):
            refuse(f"field 'params.{name}'", f"expected {expected}, got {describe(params[name])}")
    return params


def check_fitted(params: Mapping[str, Any], fitted: object, n_samples: int) -> tuple[int, int]:
    """The fitted cluster count and nearest_clusters: in range, and what the parameters give."""
    if not isinstance(fitted, dict):
        refuse("field 'fitted'", f"expected a JSON object, got {describe(fitted)}")
    k, nearest_clusters = fitted.get("n_clusters_"), fitted.get("nearest_clusters_")
    if not (
        is_count(k)
        and 1 <= k <= n_samples
        and is_count(nearest_clusters)
        and 1 <= nearest_clusters <= k
    ):
        refuse(
            "field 'fitted'",
            f"fitted sizes out of range: n_clusters_={describe(k)}, "
            f"nearest_clusters_={describe(nearest_clusters)} "
            f"for {n_samples} queries",
        )
    if params["n_clusters"] not in ("auto", k) or nearest_clusters != min(
        params["nearest_clusters"], k
    ):
        refuse(
            "field 'fitted'",
            f"n_clusters_={k}, nearest_clusters_={nearest_clusters} do not follow from "
            "the parameters "
            f"n_clusters={params['n_clusters']!r}, nearest_clusters={params['nearest_clusters']!r}",
        )
    return k, nearest_clusters


def check_embedder(stored: Mapping[str, Any], known_dimensions: Mapping[str, int]) -> None:
    """A printable identity, and for an embedder this package knows, its real dimension."""
    identity, dimension = stored.get("identity"), stored["dimension"]
    check_text(identity, "embedder.identity")
    known = known_dimensions.get(str(identity))
    if known is not None and dimension != known:
        refuse(
            "field 'embedder.dimension'",
            f"{dimension}, but embedder {identity!r} gives {known} dimensions",
        )


def check_pool_summary(
    summary: object, models: list[str], accuracy: np.ndarray, cost: np.ndarray
) -> None:
    """The readable per-model means agree with the arrays they summarise."""
    expected = {
        model: {"mean_score": float(a), "mean_cost_usd": float(c)}
        for model, a, c in zip(models, accuracy, cost, strict=True)
    }
    if (
        not isinstance(summary, dict)
        or list(summary) != models
        or any(
            not isinstance(summary[m], dict)
            or set(summary[m]) != set(expected[m])
            or not all(_close(summary[m][key], value) for key, value in expected[m].items())
            for m in models
        )
    ):
        refuse(
            "field 'pool_summary'", "disagrees with the arrays 'global_accuracy_', 'global_cost_'"
        )


def _close(value: object, expected: float) -> bool:
    return _is_finite_number(value) and math.isclose(value, expected, rel_tol=1e-9)


def check_array_values(arrays: Mapping[str, np.ndarray], n_samples: int, n_fits: int = 1) -> None:
    """Finite statistics in range, and counts consistent with the cluster sizes.

    Every calibration query is in one cluster of each of the ``n_fits`` k-means fits.
    """
    for name in ("cluster_centers_", "accuracy_", "cost_", "global_accuracy_", "global_cost_"):
        _require(name, arrays[name], np.isfinite(arrays[name]), "finite values")
    if "log_prices_" in arrays:
        prices = arrays["log_prices_"]
        _require("log_prices_", prices, np.isfinite(prices), "finite values")
        falling = np.diff(prices) <= 0
        _require("log_prices_", prices[1:], falling, "log prices that never rise with alpha")
    for name in ("accuracy_", "global_accuracy_"):
        scores = arrays[name]
        _require(name, scores, (scores >= 0) & (scores <= 1), "scores in [0, 1]")
    for name in ("cost_", "global_cost_"):
        _require(name, arrays[name], arrays[name] >= 0, "costs >= 0")
    centers = arrays["cluster_centers_"]
    with np.errstate(over="ignore"):  # a huge forged value: an infinite norm, refused below
        norms = np.sqrt(np.einsum("ij,ij->i", centers, centers))  # no copy of the centroids
    unit = (np.abs(norms - 1) <= CENTROID_NORM_TOLERANCE) | (norms == 0)
    _require("cluster_centers_", norms, unit, "rows of norm 1 (or 0)")
    sizes = arrays["cluster_sizes_"]
    _require("cluster_sizes_", sizes, sizes >= 0, "counts >= 0")
    for name in ("n_scored_", "n_costed_"):
        counts = arrays[name]
        in_range = (counts >= 0) & (counts <= sizes[:, None])
        _require(name, counts, in_range, "counts between 0 and the cluster's size")
        totals = counts.sum(axis=0)
        _require(name, totals, totals >= 1, "every model measured on some query")
    if int(sizes.sum()) != n_samples * n_fits:
        refuse(
            "array 'cluster_sizes_'",
            f"sums to {int(sizes.sum())}, not n_samples_fit={n_samples} times {n_fits} fit(s)",
        )


def _require(name: str, values: np.ndarray, ok: np.ndarray, expected: str) -> None:
    """Refuse ``values`` unless ``ok`` (of the same shape) holds everywhere; name the first miss."""
    if not np.all(ok):
        index = tuple(int(i) for i in np.argwhere(~ok)[0])
        got = describe(values[index].item())
        refuse(f"array {name!r}", f"expected {expected}, got {got} at {list(index)}")
