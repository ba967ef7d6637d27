"""What a router file must hold: ``router.json``'s schema and the checks of the arrays.

A file written or edited by someone else (checksums recomputed) is refused with one line naming
the field, instead of failing later inside numpy or routing to a "model id" that is a dict.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, NoReturn, TypeVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from langchain_avengers.routing.kmeans import ensemble_counts
from langchain_avengers.routing.scoring import PRICE_QUANTILES

FORMAT_NAME = "langchain-avengers/cluster-router"
FORMAT_VERSION = 5
ARRAYS_FILE = r"arrays-[0-9a-f]{16}\.safetensors"
MAX_ARRAY_BYTES = 128 * 2**20
"""Largest size of a router's arrays, so of what a forged file can make loading read: about
4,000 clusters of 4,096-d embeddings (``n_clusters="auto"`` fits at most 60)."""
MAX_MODEL_ID_LENGTH = 256
MAX_ENSEMBLE_FITS = 16
CENTROID_NORM_TOLERANCE = 1e-3
DIGEST_ARRAY = "metadata_sha256"
_FLOATS = ("float32", "float64")
_COUNTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_ARRAYS = {  # name: shape (k clusters of all fits, m models, d dimensions, p prices), dtypes
    "cluster_centers_": ("kd", _FLOATS),
    "accuracy_": ("km", _FLOATS),
    "cost_": ("km", _FLOATS),
    "n_scored_": ("km", _COUNTS),
    "n_costed_": ("km", _COUNTS),
    "cluster_sizes_": ("k", _COUNTS),
    "global_accuracy_": ("m", _FLOATS),
    "global_cost_": ("m", _FLOATS),
    "log_prices_": ("p", _FLOATS),
}
ARRAY_NAMES = tuple(_ARRAYS)
ArraySpec = tuple[tuple[int, ...], tuple[str, ...]]


class InvalidFieldError(ValueError):
    """A value in a router file that a router cannot use; the message names the field."""


def refuse(where: str, problem: str) -> NoReturn:
    """Raise :class:`InvalidFieldError` for ``where`` (a field or an array)."""
    msg = f"{where}: {problem}"
    raise InvalidFieldError(msg)


def describe(value: object) -> str:
    """A short ``repr`` for messages: escapes control characters, never floods a terminal."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= 60 else f"{text[:57]}..."


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


# ---------------------------------------------------------------- router.json


def _rule(problem: Callable[[Any], str | None]) -> AfterValidator:
    """A pydantic validator refusing a value with the message ``problem`` gives for it."""

    def validate(value: Any) -> Any:
        if message := problem(value):
            raise PydanticCustomError("router_file", message)  # noqa: EM101 (an error code)
        return value

    return AfterValidator(validate)


Count = Annotated[int, Field(ge=1, lt=2**63)]
AutoOrCount = Annotated[
    Any,
    _rule(
        lambda v: (
            None
            if v == "auto" or (type(v) is int and 1 <= v < 2**63)
            else "expected 'auto' or an integer >= 1"
        )
    ),
]
Finite = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Text = Annotated[
    str,
    Field(min_length=1, max_length=512),
    _rule(lambda v: None if v.isprintable() else "expected printable text"),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Params(_Strict):
    """The router's constructor parameters (its embedder is recorded by identity)."""

    n_clusters: AutoOrCount
    nearest_clusters: Count
    scoring: Literal["utility", "minmax"]
    cluster_scales: Annotated[
        list[Annotated[float, Field(gt=0, allow_inf_nan=False)]],
        Field(min_length=1, max_length=MAX_ENSEMBLE_FITS),
    ]
    cost_scale: Literal["linear", "log"]
    cluster_weights: Literal["uniform", "softmax"]
    beta: Finite
    shrinkage: Finite
    n_init: AutoOrCount
    random_state: Annotated[int, Field(ge=0, lt=2**32)] | None


class Fitted(_Strict):
    """Sizes fitting chose: clusters, nearest clusters, clusters of each k-means fit."""

    n_clusters_: Count
    nearest_clusters_: Count
    cluster_counts_: Annotated[list[Count], Field(min_length=1, max_length=MAX_ENSEMBLE_FITS)]


class EmbedderInfo(_Strict):
    """Identity and output size of the embedder the router was fitted with."""

    identity: Text
    dimension: Count


class ArraysFile(_Strict):
    """The arrays file: a bare name in the router's folder, and its SHA-256."""

    file: Annotated[str, Field(pattern=f"^{ARRAYS_FILE}$")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class RouterContent(_Strict):
    """``router.json`` but its ``arrays`` entry: what the digest in the arrays file covers."""

    format: Literal["langchain-avengers/cluster-router"]
    format_version: Literal[5]
    package_version: Text
    params: Params
    fitted: Fitted
    embedder: EmbedderInfo
    models: Annotated[list[Annotated[str, _rule(model_id_problem)]], Field(min_length=1)]
    n_samples_fit: Count
    data_fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{1,64}$")]


class RouterMetadata(RouterContent):
    """``router.json``."""

    arrays: ArraysFile


M = TypeVar("M", bound=RouterContent)


def parse_metadata(raw: object, schema: type[M], known_dimensions: Mapping[str, int]) -> M:
    """``raw`` (parsed JSON) as ``schema`` with fields that agree, else its first problem.

    Raises:
        InvalidFieldError: naming the field, what it holds and what was expected.
    """
    if not isinstance(raw, dict):
        refuse("top level", f"expected a JSON object, got {type(raw).__name__}")
    version = raw.get("format_version")
    if raw.get("format") == FORMAT_NAME and not (
        type(version) is int and version == FORMAT_VERSION
    ):
        refuse(
            "field 'format_version'",
            f"router format version {describe(version)}, but this version of langchain-avengers "
            f"reads version {FORMAT_VERSION} only; refit the router with it "
            "(ClusterRouter().fit(...).save(...), or avengers fit)",
        )
    try:
        meta = schema.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        got = "" if error["type"] == "missing" else f", got {describe(error['input'])}"
        refuse(f"field {where.lstrip('.') or 'top level'!r}", f"{error['msg']}{got}")
    _check_agreement(meta, known_dimensions)
    return meta


def _check_agreement(meta: RouterContent, known_dimensions: Mapping[str, int]) -> None:
    """Fields that must agree: unique ids, fitted sizes that follow from the parameters."""
    seen: dict[str, int] = {}
    for i, model in enumerate(meta.models):
        if model in seen:
            refuse(f"field 'models[{i}]'", f"repeats models[{seen[model]}], got {describe(model)}")
        seen[model] = i
    params, fitted, n_samples = meta.params, meta.fitted, meta.n_samples_fit
    k, nearest = fitted.n_clusters_, fitted.nearest_clusters_
    if k > n_samples or params.n_clusters not in ("auto", k):
        refuse(
            "field 'fitted.n_clusters_'",
            f"{k} does not follow from n_clusters={params.n_clusters!r} and "
            f"n_samples_fit={n_samples}",
        )
    if nearest != min(params.nearest_clusters, k):
        refuse(
            "field 'fitted.nearest_clusters_'",
            f"{nearest} does not follow from nearest_clusters={params.nearest_clusters} and "
            f"n_clusters_={k}",
        )
    if fitted.cluster_counts_ != ensemble_counts(k, params.cluster_scales, n_samples):
        refuse(
            "field 'fitted.cluster_counts_'",
            f"{fitted.cluster_counts_} does not follow from cluster_scales="
            f"{params.cluster_scales} and n_clusters_={k}",
        )
    identity, dimension = meta.embedder.identity, meta.embedder.dimension
    if known_dimensions.get(identity, dimension) != dimension:
        refuse(
            "field 'embedder.dimension'",
            f"{dimension}, but embedder {identity!r} gives {known_dimensions[identity]}",
        )


# ---------------------------------------------------------------- the arrays


def array_specs(meta: RouterContent) -> dict[str, ArraySpec]:
    """Shape and allowed dtypes of every array, refused if they could not fit in memory."""
    k, m, d = sum(meta.fitted.cluster_counts_), len(meta.models), meta.embedder.dimension
    sizes = {"k": k, "m": m, "d": d, "p": PRICE_QUANTILES}
    specs = {
        name: (tuple(sizes[c] for c in axes), dtypes) for name, (axes, dtypes) in _ARRAYS.items()
    }
    specs[DIGEST_ARRAY] = ((32,), ("uint8",))
    if (total := max_bytes(specs)) > MAX_ARRAY_BYTES:
        refuse(
            "fields 'fitted.cluster_counts_', 'models', 'embedder.dimension'",
            f"{k} clusters, {m} models and {d} dimensions need {total:,} bytes of arrays, "
            f"more than a router file may hold ({MAX_ARRAY_BYTES:,})",
        )
    return specs


def max_bytes(specs: Mapping[str, ArraySpec]) -> int:
    """The largest size the arrays of ``specs`` can have (in their widest dtypes)."""
    return sum(math.prod(shape) * np.dtype(dtypes[-1]).itemsize for shape, dtypes in specs.values())


def check_array(name: str, dtype: str, shape: tuple[int, ...], spec: ArraySpec) -> None:
    """An array's dtype (numpy name) and shape, as its file's header or the router says."""
    if dtype not in spec[1]:
        expected = " or ".join(spec[1]) if len(spec[1]) < 3 else "an integer dtype"
        refuse(f"array {name!r}", f"has dtype {dtype}, expected {expected}")
    if shape != spec[0]:
        refuse(f"array {name!r}", f"has shape {shape}, expected {spec[0]}")


def check_array_values(arrays: Mapping[str, np.ndarray], n_samples: int, n_fits: int) -> None:
    """Finite statistics in range, and counts consistent with the cluster sizes.

    Every calibration query is in one cluster of each of the ``n_fits`` k-means fits.
    """
    for name in ("cluster_centers_", "accuracy_", "cost_", "global_accuracy_", "global_cost_"):
        _require(name, arrays[name], np.isfinite(arrays[name]), "finite values")
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
