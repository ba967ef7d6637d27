"""Router files: JSON + .npz round trips, and every way a router directory can be unusable."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

import langchain_avengers
from langchain_avengers import (
    CalibrationData,
    ClusterRouter,
    RouterFileError,
    WordLlamaEmbeddings,
    load_default_router,
)
from langchain_avengers._persistence import _content_digest

ARRAYS = (
    "cluster_centers_",
    "accuracy_",
    "cost_",
    "n_scored_",
    "n_costed_",
    "cluster_sizes_",
    "global_accuracy_",
    "global_cost_",
    "cluster_counts_",
    "log_prices_",
)
TEXTS = [
    "What is 17 times 3? Answer with a number.",
    "What is the capital city of Norway?",
    "Write a Python function that sorts a list of tuples.",
    "Explain photosynthesis briefly.",
]


@pytest.fixture
def fitted(small_jsonl: Path, keyword_embeddings) -> ClusterRouter:
    return ClusterRouter(n_clusters=4, top_p=2, embedder=keyword_embeddings).fit(small_jsonl)


@pytest.fixture
def saved(fitted: ClusterRouter, tmp_path: Path) -> Path:
    return fitted.save(tmp_path / "router")


def read_metadata(path: Path) -> dict:
    return json.loads((path / "router.json").read_text())


def test_save_writes_readable_json_and_a_pickle_free_npz(
    fitted: ClusterRouter, saved: Path, small_jsonl: Path
) -> None:
    assert sorted(p.name for p in saved.iterdir()) == ["arrays.npz", "router.json"]
    meta = read_metadata(saved)
    assert meta["format"] == "langchain-avengers/cluster-router"
    assert meta["format_version"] == 3
    assert meta["package_version"] == langchain_avengers.__version__
    assert meta["embedder"] == {"identity": "tests/keyword-embeddings-4", "dimension": 4}
    assert meta["models"] == ["acme/tiny", "acme/medium", "acme/large"]
    assert meta["n_samples_fit"] == 90
    assert meta["data_fingerprint"] == CalibrationData.from_path(small_jsonl).fingerprint()
    assert meta["params"]["n_clusters"] == 4
    assert meta["params"]["top_p"] == 2
    assert meta["params"]["cost_scale"] == "linear"
    assert meta["params"]["scoring"] == "utility"
    assert meta["params"]["cluster_scales"] == [0.5, 1.0, 2.0]
    assert meta["fitted"] == {"n_clusters_": 4, "top_p_": 2}
    assert fitted.cluster_counts_.tolist() == [2, 4, 8]
    assert "embedder" not in meta["params"]  # an object: recorded by identity, never pickled
    digest = hashlib.sha256((saved / "arrays.npz").read_bytes()).hexdigest()
    assert meta["arrays"] == {"file": "arrays.npz", "sha256": digest}

    with zipfile.ZipFile(saved / "arrays.npz") as archive:
        expected = [*ARRAYS, "metadata_sha256"]
        assert sorted(archive.namelist()) == sorted(f"{name}.npy" for name in expected)
    with np.load(saved / "arrays.npz", allow_pickle=False) as npz:
        for name in ARRAYS:
            assert npz[name].dtype != object
            np.testing.assert_array_equal(npz[name], getattr(fitted, name))


def test_round_trip_gives_the_same_decisions(
    fitted: ClusterRouter, saved: Path, keyword_embeddings
) -> None:
    loaded = ClusterRouter.load(saved, embedder=keyword_embeddings)
    assert loaded.models_ == fitted.models_
    assert loaded.embedder_id_ == fitted.embedder_id_
    assert loaded.data_fingerprint_ == fitted.data_fingerprint_
    assert loaded.n_features_in_ == fitted.n_features_in_ == 4
    assert loaded.n_samples_fit_ == 90
    assert loaded.get_embedder() is keyword_embeddings
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fitted, name))
    params = {k: v for k, v in fitted.get_params().items() if k != "embedder"}
    assert {k: v for k, v in loaded.get_params().items() if k != "embedder"} == params

    vectors = np.random.default_rng(3).normal(size=(300, 4))
    for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
        for allowed in (None, ["acme/tiny", "acme/large"]):
            assert loaded.route_batch(vectors, alpha, allowed_models=allowed) == (
                fitted.route_batch(vectors, alpha, allowed_models=allowed)
            )
        assert loaded.route_batch(TEXTS, alpha) == fitted.route_batch(TEXTS, alpha)
    assert loaded.route(TEXTS[0], 0.5) == fitted.route(TEXTS[0], 0.5)


def test_round_trip_with_the_default_embedder(small_jsonl: Path, tmp_path: Path) -> None:
    fitted = ClusterRouter(n_clusters=4, top_p=2).fit(small_jsonl)  # WordLlama, offline
    path = fitted.save(tmp_path / "nested" / "router")
    meta = read_metadata(path)
    assert meta["embedder"] == {"identity": "wordllama/l2_supercat-256", "dimension": 256}

    loaded = ClusterRouter.load(path)  # no embedder needed for the default one
    assert isinstance(loaded.get_embedder(), WordLlamaEmbeddings)
    for alpha in (0.0, 0.5, 1.0):
        assert loaded.route_batch(TEXTS, alpha) == fitted.route_batch(TEXTS, alpha)
    assert ClusterRouter.load(path, embedder=WordLlamaEmbeddings()).route_batch(TEXTS) == (
        fitted.route_batch(TEXTS)
    )

    with pytest.raises(RouterFileError, match="wordllama/l2_supercat-256") as info:
        ClusterRouter.load(path, embedder=WordLlamaEmbeddings(dim=64))
    assert "wordllama/l2_supercat-64" in str(info.value)


def test_default_wordllama_dimension_is_restored(small_jsonl: Path, tmp_path: Path) -> None:
    fitted = ClusterRouter(n_clusters=3, top_p=1, embedder=WordLlamaEmbeddings(dim=64))
    path = fitted.fit(small_jsonl).save(tmp_path / "r64")
    loaded = ClusterRouter.load(path)
    assert loaded.get_embedder() == WordLlamaEmbeddings(dim=64)
    assert loaded.route_batch(TEXTS, 0.5) == fitted.route_batch(TEXTS, 0.5)


def test_loading_with_a_different_embedder_is_refused(saved: Path) -> None:
    with pytest.raises(RouterFileError) as info:
        ClusterRouter.load(saved, embedder=DeterministicFakeEmbedding(size=4))
    message = str(info.value)
    assert str(saved) in message
    assert "tests/keyword-embeddings-4" in message
    assert "DeterministicFakeEmbedding" in message


def test_loading_a_custom_embedder_router_without_its_embedder(saved: Path) -> None:
    with pytest.raises(RouterFileError, match=r"tests/keyword-embeddings-4.*embedder=") as info:
        ClusterRouter.load(saved)
    assert isinstance(info.value, ValueError)


def test_same_embedder_class_with_another_dimension_is_refused(
    small_jsonl: Path, tmp_path: Path
) -> None:
    path = ClusterRouter(n_clusters=3, top_p=1, embedder=DeterministicFakeEmbedding(size=16))
    path = path.fit(small_jsonl).save(tmp_path / "fake16")
    with pytest.raises(RouterFileError):
        ClusterRouter.load(path, embedder=DeterministicFakeEmbedding(size=32))


# ---------------------------------------------------------------- cluster counts and old files


def test_automatic_cluster_count_round_trips(
    small_jsonl: Path, tmp_path: Path, keyword_embeddings
) -> None:
    fitted = ClusterRouter(top_p=12, embedder=keyword_embeddings).fit(small_jsonl)
    path = fitted.save(tmp_path / "auto")
    meta = read_metadata(path)
    assert (meta["params"]["n_clusters"], meta["params"]["top_p"]) == ("auto", 12)
    assert meta["fitted"] == {"n_clusters_": 9, "top_p_": 9}
    loaded = ClusterRouter.load(path, embedder=keyword_embeddings)
    assert (loaded.n_clusters, loaded.top_p, loaded.n_clusters_, loaded.top_p_) == (
        "auto",
        12,
        9,
        9,
    )
    assert loaded.route(TEXTS[0], 0.5) == fitted.route(TEXTS[0], 0.5)


def reseal(path: Path, change: Callable[[dict], object]) -> None:
    """Edit the metadata and recompute both checksums, as another program's writer would."""
    meta = read_metadata(path)
    change(meta)
    with np.load(path / "arrays.npz") as npz:
        arrays = dict(npz)
    arrays["metadata_sha256"] = np.array(_content_digest(meta))
    np.savez_compressed(path / "arrays.npz", **arrays)
    meta["arrays"]["sha256"] = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()
    (path / "router.json").write_text(json.dumps(meta))


def as_format_2(meta: dict) -> None:
    """What format 2 wrote: no ensemble or utility score (nor their arrays, ignored if kept)."""
    del meta["params"]["scoring"], meta["params"]["cluster_scales"]
    meta["format_version"] = 2


def as_format_1(meta: dict) -> None:
    as_format_2(meta)
    del meta["fitted"]
    meta["format_version"] = 1


@pytest.fixture
def paper_fitted(small_jsonl: Path, keyword_embeddings) -> ClusterRouter:
    """A router as formats 1 and 2 could hold: one k-means fit, the paper's min-max score."""
    router = ClusterRouter(
        n_clusters=4, top_p=2, scoring="minmax", cluster_scales=(1.0,), embedder=keyword_embeddings
    )
    return router.fit(small_jsonl)


@pytest.mark.parametrize("old_format", [as_format_1, as_format_2], ids=["format-1", "format-2"])
def test_older_formats_still_load_as_single_fit_minmax_routers(
    paper_fitted: ClusterRouter, tmp_path: Path, keyword_embeddings, old_format
) -> None:
    saved = paper_fitted.save(tmp_path / "old")
    reseal(saved, old_format)
    loaded = ClusterRouter.load(saved, embedder=keyword_embeddings)
    assert (loaded.n_clusters_, loaded.top_p_) == (4, 2)
    assert (loaded.scoring, loaded.cluster_scales, loaded.cluster_counts_.tolist()) == (
        "minmax",
        (1.0,),
        [4],
    )
    assert loaded.route_batch(TEXTS, 0.5) == paper_fitted.route_batch(TEXTS, 0.5)


def test_ensemble_and_price_schedule_round_trip(
    fitted: ClusterRouter, saved: Path, keyword_embeddings
) -> None:
    loaded = ClusterRouter.load(saved, embedder=keyword_embeddings)
    assert loaded.cluster_scales == (0.5, 1.0, 2.0)
    np.testing.assert_array_equal(loaded.cluster_counts_, fitted.cluster_counts_)
    np.testing.assert_array_equal(loaded.log_prices_, fitted.log_prices_)
    for alpha in (0.0, 0.3, 0.7, 1.0):
        assert loaded.route_batch(TEXTS, alpha) == fitted.route_batch(TEXTS, alpha)
        assert loaded.route(TEXTS[2], alpha) == fitted.route(TEXTS[2], alpha)


def test_the_bundled_router_still_loads() -> None:
    router = load_default_router()
    assert (router.n_clusters, router.n_clusters_, router.top_p_) == ("auto", 60, 4)
    assert (router.scoring, router.cluster_counts_.tolist()) == ("utility", [30, 60, 120])
    assert router.route("What is the capital of France?", 0.5).top_p == 4


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m["fitted"].update(n_clusters_=5), "do not follow from the parameters"),
        (lambda m: m["fitted"].update(top_p_=3), "do not follow from the parameters"),
        (lambda m: m["fitted"].update(top_p_=0), "fitted sizes out of range"),
        (lambda m: m["fitted"].update(n_clusters_="4"), "fitted sizes out of range"),
        (lambda m: m["params"].update(n_clusters=4.5), "n_clusters must be"),
        (lambda m: m.pop("fitted"), "missing field 'fitted'"),
        (lambda m: as_format_1(m) or m["params"].update(top_p=5), "out of range"),
        (lambda m: m["params"].update(cluster_scales=[1.0]), "do not follow from"),
    ],
    ids=[
        "count",
        "top-p",
        "top-p-zero",
        "count-string",
        "param-float",
        "no-fitted",
        "format-1-top-p",
        "scales",
    ],
)
def test_resealed_inconsistent_sizes_are_refused(
    saved: Path, keyword_embeddings, change: Callable[[dict], object], expected: str
) -> None:
    reseal(saved, change)
    with pytest.raises(RouterFileError, match=expected) as info:
        ClusterRouter.load(saved, embedder=keyword_embeddings)
    assert str(saved / "router.json") in str(info.value)


# ---------------------------------------------------------------- damaged router directories


def edit_json(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        meta = read_metadata(path)
        change(meta)
        (path / "router.json").write_text(json.dumps(meta))

    return mutate


def truncate(name: str, keep: float) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        data = (path / name).read_bytes()
        (path / name).write_bytes(data[: int(len(data) * keep)])

    return mutate


def flip_byte(path: Path) -> None:
    data = bytearray((path / "arrays.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "arrays.npz").write_bytes(bytes(data))


def rewrite_arrays(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """Change the arrays and update the checksum, as a careless hand edit would."""

    def mutate(path: Path) -> None:
        with np.load(path / "arrays.npz") as npz:
            arrays = dict(npz)
        change(arrays)
        np.savez_compressed(path / "arrays.npz", **arrays)
        meta = read_metadata(path)
        meta["arrays"]["sha256"] = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()
        (path / "router.json").write_text(json.dumps(meta))

    return mutate


DAMAGE = {
    "missing-directory": (lambda p: shutil.rmtree(p), "router.json is missing"),
    "missing-json": (lambda p: (p / "router.json").unlink(), "router.json is missing"),
    "missing-arrays": (lambda p: (p / "arrays.npz").unlink(), "missing router arrays"),
    "truncated-json": (truncate("router.json", 0.5), "corrupted or truncated"),
    "empty-json": (truncate("router.json", 0.0), "corrupted or truncated"),
    "binary-json": (
        lambda p: (p / "router.json").write_bytes(b"\xff\xfe\x00\x01garbage"),
        "corrupted or truncated",
    ),
    "json-not-an-object": (lambda p: (p / "router.json").write_text("[1, 2]"), "router.json"),
    "json-missing-fields": (edit_json(lambda m: m.pop("models")), "models"),
    "unsupported-version": (edit_json(lambda m: m.update(format_version=99)), "version 99"),
    "wrong-fitted-count": (
        edit_json(lambda m: m["fitted"].update(n_clusters_=5)),
        "modified after the router was saved",
    ),
    "fewer-models-than-arrays": (
        edit_json(lambda m: m.update(models=m["models"][:2])),
        "modified after the router was saved",
    ),
    "models-reordered": (
        edit_json(lambda m: m.update(models=m["models"][::-1])),
        "modified after the router was saved",
    ),
    "bogus-cost-scale": (
        edit_json(lambda m: m["params"].update(cost_scale="weird")),
        "modified after the router was saved",
    ),
    "wrong-n-clusters": (
        edit_json(lambda m: m["params"].update(n_clusters=5)),
        "modified after the router was saved",
    ),
    "wrong-dimension": (
        edit_json(lambda m: m["embedder"].update(dimension=8)),
        "modified after the router was saved",
    ),
    "truncated-arrays": (truncate("arrays.npz", 0.6), "checksum"),
    "modified-arrays": (flip_byte, "checksum"),
    "arrays-wrong-shape": (
        rewrite_arrays(lambda a: a.update(cost_=a["cost_"][:, :2])),
        "'cost_' has shape (14, 2)",  # 2 + 4 + 8 clusters of the ensemble
    ),
    "arrays-missing-one": (rewrite_arrays(lambda a: a.pop("accuracy_")), "accuracy_"),
    "arrays-with-pickle": (
        rewrite_arrays(lambda a: a.update(cost_=np.array([{"x": 1}], dtype=object))),
        "unreadable router arrays",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_router_is_a_router_file_error(
    saved: Path, keyword_embeddings, damage: str
) -> None:
    mutate, expected = DAMAGE[damage]
    mutate(saved)
    with pytest.raises(RouterFileError) as info:
        ClusterRouter.load(saved, embedder=keyword_embeddings)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(saved) in message
    assert expected in message


CORRUPTED_FIELDS = {
    "embedder-without-identity": lambda m: m["embedder"].pop("identity"),
    "embedder-not-an-object": lambda m: m.update(embedder="tests/keyword-embeddings-4"),
    "arrays-not-an-object": lambda m: m.update(arrays="arrays.npz"),
    "unknown-parameter": lambda m: m["params"].update(colour="red"),
    "params-not-an-object": lambda m: m.update(params=[4, 2]),
    "dimension-not-a-number": lambda m: m["embedder"].update(dimension="four"),
    "no-sample-count": lambda m: m.pop("n_samples_fit"),
}


@pytest.mark.parametrize("field", list(CORRUPTED_FIELDS))
def test_corrupted_metadata_fields_are_router_file_errors(
    saved: Path, keyword_embeddings, field: str
) -> None:
    edit_json(CORRUPTED_FIELDS[field])(saved)
    with pytest.raises(RouterFileError) as info:
        ClusterRouter.load(saved, embedder=keyword_embeddings)
    assert str(saved / "router.json") in str(info.value)


# ---------------------------------------------------------------- saving over things


def test_saving_over_an_existing_router_replaces_it(
    small_jsonl: Path, tmp_path: Path, keyword_embeddings
) -> None:
    path = tmp_path / "router"
    first = ClusterRouter(n_clusters=4, top_p=2, embedder=keyword_embeddings).fit(small_jsonl)
    assert first.save(path) == path
    second = ClusterRouter(n_clusters=3, top_p=1, cost_scale="linear", embedder=keyword_embeddings)
    second.fit(small_jsonl).save(path)

    loaded = ClusterRouter.load(path, embedder=keyword_embeddings)
    assert (loaded.n_clusters, loaded.top_p, loaded.cost_scale) == (3, 1, "linear")
    assert loaded.cluster_centers_.shape == (2 + 3 + 6, 4)
    assert [p.name for p in tmp_path.iterdir()] == ["router"]  # no staging or backup left
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "router.json"]


def test_saving_over_a_directory_that_is_not_a_router_refuses(
    fitted: ClusterRouter, tmp_path: Path
) -> None:
    target = tmp_path / "my-documents"
    target.mkdir()
    (target / "thesis.txt").write_text("precious")
    with pytest.raises(RouterFileError, match="not a router directory; refusing"):
        fitted.save(target)
    assert [p.name for p in target.iterdir()] == ["thesis.txt"]
    assert (target / "thesis.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-documents"]


def test_saving_over_a_file_refuses(fitted: ClusterRouter, tmp_path: Path) -> None:
    target = tmp_path / "router"
    target.write_text("not a directory")
    with pytest.raises(RouterFileError):
        fitted.save(target)
    assert target.read_text() == "not a directory"
