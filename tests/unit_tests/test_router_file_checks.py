"""Router files written or edited by someone else, checksums recomputed: values are checked too.

Every forged directory here is self-consistent (``reseal`` recomputes both checksums), so only
the value checks stand between it and a router that routes to ``{'a': 2}``. Sizes come from
the metadata before the arrays file is read, and safetensors checks its header against the
file, so a file announcing huge arrays costs no memory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from router_files import (
    arrays_file,
    raw_header,
    read_metadata,
    reseal,
    write_raw_arrays,
)

from langchain_avengers import ClusterRouter, RouterFileError

MiB = 2**20
EMBEDDER = DeterministicFakeEmbedding(size=4)


_PRISTINE: list[Path] = []


@pytest.fixture
def saved(small_jsonl: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A fresh copy of one saved router (fitted once per module), to forge."""
    if not _PRISTINE:
        router = ClusterRouter(  # one k-means fit: the shapes below are (4, ...)
            n_clusters=4,
            nearest_clusters=2,
            scoring="minmax",
            cluster_scales=(1.0,),
            embedder=EMBEDDER,
        ).fit(small_jsonl)
        _PRISTINE.append(router.save(tmp_path_factory.mktemp("pristine") / "router"))
    return Path(shutil.copytree(_PRISTINE[0], tmp_path / "router"))


def refusal(path: Path, embedder: Embeddings | None = EMBEDDER) -> str:
    """The one-line message loading ``path`` is refused with."""
    with pytest.raises(RouterFileError) as info:
        ClusterRouter.load(path, embedder=embedder)
    message = str(info.value)
    assert message.isprintable(), message  # one line, escape codes escaped
    return message


@contextmanager
def peak_memory_below(limit: int) -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak {peak:,} bytes"


def set_model(index: int, value: object) -> Callable[[dict], None]:
    def change(meta: dict) -> None:
        meta["models"][index] = value

    return change


def set_param(name: str, value: object) -> Callable[[dict], None]:
    return lambda meta: meta["params"].update({name: value})


def set_cell(name: str, index: tuple[int, ...], value: float) -> Callable[[dict], None]:
    def change(arrays: dict) -> None:
        arrays[name] = arrays[name].astype(np.float64)
        arrays[name][index] = value

    return change


def as_dtype(name: str, dtype: str) -> Callable[[dict], None]:
    return lambda arrays: arrays.update({name: arrays[name].astype(dtype)})


# (change to router.json, change to the arrays, text the refusal holds); the file blamed is
# router.json unless the text names an array
FORGED_METADATA = {
    "ids-not-strings": (
        lambda m: m.update(models=[1, {"a": 2}, None]),
        "'models[0]': Input should be a valid string, got 1",
    ),
    "id-a-dict": (set_model(1, {"a": 2}), "'models[1]': Input should be a valid string"),
    "id-null": (set_model(2, None), "'models[2]'"),
    "id-empty": (set_model(0, ""), "'models[0]': expected a non-empty string"),
    "duplicate-ids": (set_model(2, "acme/tiny"), "'models[2]': repeats models[0]"),
    "id-backslash": (set_model(0, "acme\\tiny"), "backslash"),
    "id-dot-dot": (set_model(0, "../../etc/passwd"), "'..' part"),
    "id-absolute": (set_model(0, "/acme/tiny"), "empty, '.' or '..' part"),
    "id-escape-codes": (set_model(0, "\x1b[31macme/tiny\x1b[0m"), "control or invisible"),
    "id-bidi-override": (set_model(0, "acme/\u202etiny"), "control or invisible"),
    "id-newline": (set_model(0, "acme/tiny\nINFO all good"), "control or invisible"),
    "id-padded": (set_model(0, " acme/tiny"), "leading or trailing whitespace"),
    "id-too-long": (set_model(0, "acme/" + "x" * 300), "longer than 256"),
    "version-bool": (lambda m: m.update(format_version=True), "'format_version'"),
    "version-string": (lambda m: m.update(format_version="5"), "'format_version'"),
    "other-format": (lambda m: m.update(format="someone/else"), "'format'"),
    "beta-string": (set_param("beta", "abc"), "'params.beta': Input should be a valid number"),
    "beta-nan": (set_param("beta", float("nan")), "'params.beta'"),
    "beta-negative": (set_param("beta", -1.0), "'params.beta'"),
    "shrinkage-infinite": (set_param("shrinkage", float("inf")), "'params.shrinkage'"),
    "shrinkage-string": (set_param("shrinkage", "0"), "'params.shrinkage'"),
    "nearest-clusters-bool": (set_param("nearest_clusters", True), "'params.nearest_clusters'"),
    "cost-scale": (set_param("cost_scale", "weird"), "'params.cost_scale'"),
    "cluster-weights": (set_param("cluster_weights", ["uniform"]), "'params.cluster_weights'"),
    "n-init-zero": (set_param("n_init", 0), "'params.n_init'"),
    "random-state-negative": (set_param("random_state", -1), "'params.random_state'"),
    "random-state-string": (set_param("random_state", "0"), "'params.random_state'"),
    "unknown-param": (set_param("colour", "red"), "'params.colour': Extra inputs are not"),
    "missing-param": (lambda m: m["params"].pop("beta"), "'params.beta': Field required"),
    "unknown-field": (lambda m: m.update(notes="hi"), "'notes': Extra inputs are not permitted"),
    "samples-string": (lambda m: m.update(n_samples_fit="90"), "'n_samples_fit'"),
    "samples-zero": (lambda m: m.update(n_samples_fit=0), "'n_samples_fit'"),
    "fitted-bool": (
        lambda m: m["fitted"].update(nearest_clusters_=True),
        "'fitted.nearest_clusters_': Input should be a valid integer, got True",
    ),
    "fingerprint-number": (lambda m: m.update(data_fingerprint=123), "'data_fingerprint'"),
    "identity-escape": (
        lambda m: m["embedder"].update(identity="fake\x1b[2J"),
        "'embedder.identity'",
    ),
    "version-escape": (lambda m: m.update(package_version="\x1b]0;owned\x07"), "package_version"),
    "arrays-path": (lambda m: m["arrays"].update(file="../arrays.npz"), "'arrays.file'"),
    "arrays-npz": (
        lambda m: m["arrays"].update(file="arrays-0123456789abcdef.npz"),
        "'arrays.file': String should match pattern",
    ),
}

FORGED_ARRAYS = {
    "nan-accuracy": (set_cell("accuracy_", (1, 2), np.nan), "'accuracy_': expected finite"),
    "accuracy-above-1": (set_cell("accuracy_", (0, 0), 1.5), "scores in [0, 1], got 1.5 at [0, 0]"),
    "pool-accuracy-negative": (set_cell("global_accuracy_", (1,), -0.1), "'global_accuracy_'"),
    "negative-cost": (set_cell("cost_", (2, 1), -0.001), "'cost_': expected costs >= 0"),
    "infinite-pool-cost": (set_cell("global_cost_", (0,), np.inf), "'global_cost_'"),
    "infinite-centroid": (set_cell("cluster_centers_", (0, 0), np.inf), "'cluster_centers_'"),
    "centroid-not-unit": (
        lambda a: a.update(cluster_centers_=a["cluster_centers_"] * 2),
        "rows of norm 1 (or 0), got 2.0",
    ),
    "more-scored-than-queries": (
        lambda a: a["n_scored_"].__setitem__((0, 0), a["cluster_sizes_"][0] + 1),
        "'n_scored_': expected counts between 0 and the cluster's size",
    ),
    "negative-size": (lambda a: a["cluster_sizes_"].__setitem__(1, -3), "'cluster_sizes_'"),
    "sizes-sum": (
        lambda a: a["cluster_sizes_"].__setitem__(0, a["cluster_sizes_"][0] + 1),
        "sums to 91, not n_samples_fit=90",
    ),
    "model-never-scored": (
        lambda a: a["n_scored_"].__setitem__((slice(None), 1), 0),
        "every model measured on some query, got 0 at [1]",
    ),
    "complex-array": (as_dtype("cost_", "complex64"), "'cost_': has dtype C64, expected float"),
    "bool-counts": (as_dtype("n_costed_", "bool"), "'n_costed_': has dtype BOOL"),
    "float-counts": (as_dtype("cluster_sizes_", "float64"), "expected an integer dtype"),
    "half-floats": (as_dtype("accuracy_", "float16"), "has dtype float16"),
    "int-centroids": (as_dtype("cluster_centers_", "int64"), "has dtype int64, expected float32"),
    "extra-array": (lambda a: a.update(payload=np.zeros(3)), "arrays: unexpected ['payload']"),
}


@pytest.mark.parametrize("case", list(FORGED_METADATA))
def test_forged_metadata_is_refused(saved: Path, case: str) -> None:
    change, expected = FORGED_METADATA[case]
    reseal(saved, change)
    message = refusal(saved)
    assert message.startswith(f"{saved / 'router.json'}: "), message
    assert expected in message


@pytest.mark.parametrize("case", list(FORGED_ARRAYS))
def test_forged_arrays_are_refused(saved: Path, case: str) -> None:
    change, expected = FORGED_ARRAYS[case]
    name = arrays_file(saved)
    reseal(saved, change_arrays=change)
    message = refusal(saved)
    assert message.startswith(f"{name}: "), message
    assert expected in message


def test_a_checksum_that_is_not_one_is_refused(saved: Path) -> None:
    meta = read_metadata(saved)
    meta["arrays"]["sha256"] = "abc"
    (saved / "router.json").write_text(json.dumps(meta))
    assert "'arrays.sha256': String should match pattern '^[0-9a-f]{64}$', got 'abc'" in (
        refusal(saved)
    )


def test_a_dimension_the_known_embedder_does_not_have_is_refused(saved: Path) -> None:
    reseal(saved, lambda m: m["embedder"].update(identity="wordllama/l2_supercat-64"))
    message = refusal(saved, embedder=None)
    assert "'embedder.dimension': 4, but embedder 'wordllama/l2_supercat-64' gives 64" in message


def test_arrays_named_outside_the_directory_are_never_opened(saved: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(arrays_file(saved).read_bytes())
    reseal(saved, lambda m: m["arrays"].update(file=str(outside)))
    assert "'arrays.file'" in refusal(saved)


# ---------------------------------------------------------------- sizes before decoding


def test_a_header_announcing_a_huge_array_is_refused_before_decoding(saved: Path) -> None:
    # 4 x 2**26 float64 = 2 GiB announced, 128 bytes stored: safetensors checks the header
    header, data = raw_header(saved)
    header["cluster_centers_"]["shape"] = [4, 2**26]
    write_raw_arrays(saved, header, data)
    with peak_memory_below(2 * MiB):
        message = refusal(saved)
    assert f"{arrays_file(saved)}: unreadable router arrays (" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda h: h["accuracy_"].update(data_offsets=[0, 10**12]), "unreadable router arrays"),
        (lambda h: h["accuracy_"].update(dtype="BF16"), "unreadable router arrays"),
        (
            lambda h: h["metadata_sha256"].update(dtype="F8_E4M3"),
            "'metadata_sha256': has dtype F8_E4M3, expected uint8",
        ),
        (
            lambda h: h["metadata_sha256"].update(dtype="I8"),
            "'metadata_sha256': has dtype int8, expected uint8",
        ),
        (lambda h: h.update(__metadata__={"x": "y"}), None),
    ],
    ids=["offsets", "bf16-size", "float8-digest", "signed-digest", "metadata"],
)
def test_hand_written_safetensors_headers(saved: Path, change, expected: str | None) -> None:
    header, data = raw_header(saved)
    change(header)
    write_raw_arrays(saved, header, data)
    if expected is None:  # a header safetensors and the checks accept: still loads
        assert ClusterRouter.load(saved, embedder=EMBEDDER).n_clusters_ == 4
    else:
        assert expected in refusal(saved)


def test_arrays_written_by_another_safetensors_writer_load(saved: Path) -> None:
    """Float32 statistics and small integer counts are accepted, as any writer may choose."""

    def narrow(arrays: dict) -> None:
        for name in ("accuracy_", "cost_", "global_accuracy_", "global_cost_"):
            arrays[name] = arrays[name].astype(np.float32)
        for name in ("n_scored_", "n_costed_", "cluster_sizes_"):
            arrays[name] = arrays[name].astype(np.uint16)

    reseal(saved, change_arrays=narrow)
    router = ClusterRouter.load(saved, embedder=EMBEDDER)
    assert router.accuracy_.dtype == np.float32
    assert router.route_batch(np.eye(4), 0.5) is not None


def test_metadata_announcing_huge_arrays_is_refused_before_opening_them(
    saved: Path,
) -> None:
    def inflate(meta: dict) -> None:
        meta["params"]["n_clusters"] = meta["fitted"]["n_clusters_"] = 10**7
        meta["fitted"]["cluster_counts_"] = [10**7]
        meta["n_samples_fit"] = 10**7

    reseal(saved, inflate)
    with peak_memory_below(2 * MiB):
        message = refusal(saved)
    assert "10000000 clusters, 3 models and 4 dimensions need" in message
    assert "more than a router file may hold" in message


def test_a_sparse_arrays_file_is_refused_by_its_size_without_reading_it(
    saved: Path,
) -> None:
    with open(arrays_file(saved), "r+b") as handle:
        handle.truncate(256 * MiB)  # sparse: no disk, no memory
    start = time.perf_counter()
    with peak_memory_below(2 * MiB):
        message = refusal(saved)
    assert time.perf_counter() - start < 1.0
    assert "268,435,456 bytes, more than the arrays router.json announces can take" in message


# ---------------------------------------------------------------- odd files


def test_deeply_nested_metadata_is_refused(saved: Path) -> None:
    (saved / "router.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "corrupted or truncated router metadata" in refusal(saved)


def test_huge_metadata_is_refused_without_parsing_it(saved: Path) -> None:
    with open(saved / "router.json", "r+b") as handle:
        handle.truncate(64 * MiB)
    with peak_memory_below(2 * MiB):
        assert "67,108,864 bytes, more than router metadata may take (1,048,576)" in refusal(saved)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_arrays_that_are_not_a_regular_file_are_refused(saved: Path, kind: str) -> None:
    file = arrays_file(saved)
    file.unlink()
    if kind == "fifo":
        os.mkfifo(file)  # opening it for reading must not wait for a writer
    else:
        file.symlink_to("/dev/zero")
    assert f"{file}: not a regular file" in refusal(saved)
