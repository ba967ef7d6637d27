"""Router files: JSON + safetensors round trips, and every way a router folder can be unusable."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from router_files import arrays_file, read_arrays, read_metadata, reseal, seal_arrays
from safetensors.numpy import load_file, save

import langchain_avengers
from langchain_avengers import (
    CalibrationData,
    ClusterRouter,
    RouterFileError,
    WordLlamaEmbeddings,
    load_default_router,
)

ARRAYS = (
    "cluster_centers_",
    "accuracy_",
    "cost_",
    "n_scored_",
    "n_costed_",
    "cluster_sizes_",
    "global_accuracy_",
    "global_cost_",
    "log_prices_",
)
TEXTS = [
    "What is 17 times 3? Answer with a number.",
    "What is the capital city of Norway?",
    "Write a Python function that sorts a list of tuples.",
    "Explain photosynthesis briefly.",
]


_FITTED: list[ClusterRouter] = []


@pytest.fixture
def fitted(small_jsonl: Path, keyword_embeddings) -> ClusterRouter:
    """A router of its own for each test (fitted once: k-means is most of this file's time)."""
    if not _FITTED:  # one k-means fit, so the shapes below are (4, ...)
        router = ClusterRouter(
            n_clusters=4,
            nearest_clusters=2,
            scoring="minmax",
            cluster_scales=(1.0,),
            embedder=keyword_embeddings,
        )
        _FITTED.append(router.fit(small_jsonl))
    return copy.deepcopy(_FITTED[0])


@pytest.fixture
def saved(fitted: ClusterRouter, tmp_path: Path) -> Path:
    return fitted.save(tmp_path / "router")


def test_save_writes_readable_json_and_a_safetensors_file(
    fitted: ClusterRouter, saved: Path, small_jsonl: Path
) -> None:
    meta = read_metadata(saved)
    arrays = saved / meta["arrays"]["file"]
    assert sorted(p.name for p in saved.iterdir()) == [".router.lock", arrays.name, "router.json"]
    assert meta["format"] == "langchain-avengers/cluster-router"
    assert meta["format_version"] == 5
    assert meta["package_version"] == langchain_avengers.__version__
    assert meta["embedder"] == {"identity": "tests/keyword-embeddings-4", "dimension": 4}
    assert meta["models"] == ["acme/tiny", "acme/medium", "acme/large"]
    assert meta["n_samples_fit"] == 90
    assert meta["data_fingerprint"] == CalibrationData.from_path(small_jsonl).fingerprint()
    assert meta["params"]["n_clusters"] == 4
    assert meta["params"]["nearest_clusters"] == 2
    assert meta["params"]["cost_scale"] == "linear"
    assert (meta["params"]["scoring"], meta["params"]["cluster_scales"]) == ("minmax", [1.0])
    assert meta["fitted"] == {"n_clusters_": 4, "nearest_clusters_": 2, "cluster_counts_": [4]}
    assert "embedder" not in meta["params"]  # an object: recorded by identity, never pickled
    digest = hashlib.sha256(arrays.read_bytes()).hexdigest()
    assert meta["arrays"] == {"file": f"arrays-{digest[:16]}.safetensors", "sha256": digest}
    assert set(meta) == {
        *("format", "format_version", "package_version", "params", "fitted", "embedder"),
        *("models", "n_samples_fit", "data_fingerprint", "arrays"),
    }

    stored = load_file(arrays)  # any safetensors reader opens it
    assert sorted(stored) == sorted([*ARRAYS, "metadata_sha256"])
    for name in ARRAYS:
        assert stored[name].dtype == getattr(fitted, name).dtype
        np.testing.assert_array_equal(stored[name], getattr(fitted, name))
    content = {key: value for key, value in meta.items() if key != "arrays"}
    expected = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).digest()
    assert stored["metadata_sha256"].tobytes() == expected


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
    fitted = ClusterRouter(n_clusters=4, nearest_clusters=2).fit(small_jsonl)  # WordLlama, offline
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
    fitted = ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=WordLlamaEmbeddings(dim=64))
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
    path = ClusterRouter(
        n_clusters=3, nearest_clusters=1, embedder=DeterministicFakeEmbedding(size=16)
    )
    path = path.fit(small_jsonl).save(tmp_path / "fake16")
    with pytest.raises(RouterFileError):
        ClusterRouter.load(path, embedder=DeterministicFakeEmbedding(size=32))


# ---------------------------------------------------------------- cluster counts and old files


def test_automatic_cluster_count_round_trips(
    small_jsonl: Path, tmp_path: Path, keyword_embeddings
) -> None:
    fitted = ClusterRouter(nearest_clusters=12, embedder=keyword_embeddings).fit(small_jsonl)
    path = fitted.save(tmp_path / "auto")
    meta = read_metadata(path)
    assert (meta["params"]["n_clusters"], meta["params"]["nearest_clusters"]) == ("auto", 12)
    assert meta["fitted"] == {
        "n_clusters_": 9,
        "nearest_clusters_": 9,
        "cluster_counts_": [5, 9, 18],
    }
    loaded = ClusterRouter.load(path, embedder=keyword_embeddings)
    assert (
        loaded.n_clusters,
        loaded.nearest_clusters,
        loaded.n_clusters_,
        loaded.nearest_clusters_,
    ) == (
        "auto",
        12,
        9,
        9,
    )
    assert loaded.route(TEXTS[0], 0.5) == fitted.route(TEXTS[0], 0.5)


@pytest.mark.parametrize("version", [1, 2, 3, 4, 6, "5", 5.0, None])
def test_a_router_of_another_format_version_is_refused_with_what_to_do(
    saved: Path, keyword_embeddings, version: object
) -> None:
    reseal(saved, lambda m: m.update(format_version=version))
    with pytest.raises(RouterFileError) as info:
        ClusterRouter.load(saved, embedder=keyword_embeddings)
    message = str(info.value)
    assert message.startswith(f"{saved / 'router.json'}: field 'format_version': ")
    assert f"router format version {version!r}, but this version" in message
    assert "reads version 5 only; refit the router with it" in message


def test_a_format_4_router_is_refused_before_its_arrays_are_read(
    saved: Path, keyword_embeddings
) -> None:
    """What an earlier version of the package wrote: format 4 and an ``.npz`` of arrays."""
    meta = read_metadata(saved)
    arrays_file(saved).rename(saved / "arrays-0123456789abcdef.npz")
    meta.update(format_version=4, arrays={"file": "arrays-0123456789abcdef.npz", "sha256": "0"})
    (saved / "router.json").write_text(json.dumps(meta))
    with pytest.raises(RouterFileError, match="router format version 4, but") as info:
        ClusterRouter.load(saved, embedder=keyword_embeddings)
    assert "\n" not in str(info.value)


def test_an_ensemble_router_round_trips(
    small_jsonl: Path, tmp_path: Path, keyword_embeddings
) -> None:
    router = ClusterRouter(n_clusters=4, nearest_clusters=2, embedder=keyword_embeddings).fit(
        small_jsonl
    )
    meta = read_metadata(router.save(tmp_path / "ensemble"))
    assert meta["params"]["scoring"] == "utility"
    assert meta["params"]["cluster_scales"] == [0.5, 1.0, 2.0]
    assert meta["fitted"]["cluster_counts_"] == [2, 4, 8]
    loaded = ClusterRouter.load(tmp_path / "ensemble", embedder=keyword_embeddings)
    np.testing.assert_array_equal(loaded.log_prices_, router.log_prices_)
    assert loaded.cluster_scales == (0.5, 1.0, 2.0)
    for alpha in (0.0, 0.3, 0.7, 1.0):
        assert loaded.route_batch(TEXTS, alpha) == router.route_batch(TEXTS, alpha)


@pytest.mark.parametrize(
    ("change", "change_arrays", "expected"),
    [
        (lambda m: m["fitted"].update(cluster_counts_=[2, 4, 7]), None, "does not follow from"),
        (lambda m: m["params"].update(cluster_scales=[1.0]), None, "does not follow from"),
        (lambda m: m["params"].update(cluster_scales=[]), None, "'params.cluster_scales'"),
        (lambda m: m["params"].update(scoring="best"), None, "'params.scoring'"),
        (lambda m: m["fitted"].update(cluster_counts_="x"), None, "'fitted.cluster_counts_'"),
        (None, lambda a: a.update(log_prices_=a["log_prices_"][::-1].copy()), "never rise"),
        (None, lambda a: a["log_prices_"].__setitem__(3, np.nan), "finite values"),
    ],
    ids=["counts", "scales", "no-scales", "scoring", "counts-type", "rising", "nan-price"],
)
def test_forged_ensemble_fields_are_refused(
    small_jsonl: Path, tmp_path: Path, keyword_embeddings, change, change_arrays, expected
) -> None:
    router = ClusterRouter(n_clusters=4, nearest_clusters=2, embedder=keyword_embeddings).fit(
        small_jsonl
    )
    path = router.save(tmp_path / "ensemble")
    reseal(path, change or (lambda m: None), change_arrays or (lambda a: None))
    with pytest.raises(RouterFileError, match=expected):
        ClusterRouter.load(path, embedder=keyword_embeddings)


def test_the_bundled_router_still_loads() -> None:
    router = load_default_router()
    assert (router.n_clusters, router.n_clusters_, router.nearest_clusters_) == ("auto", 60, 4)
    assert router.cluster_counts_.tolist() == [30, 60, 120]  # the ensemble of the default
    assert router.route("What is the capital of France?", 0.5).nearest_clusters == 4


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda m: m["fitted"].update(n_clusters_=5),
            "'fitted.n_clusters_': 5 does not follow from n_clusters=4",
        ),
        (
            lambda m: m["fitted"].update(nearest_clusters_=3),
            "'fitted.nearest_clusters_': 3 does not follow from nearest_clusters=2",
        ),
        (
            lambda m: m["fitted"].update(nearest_clusters_=0),
            "'fitted.nearest_clusters_': Input should be greater than or equal to 1, got 0",
        ),
        (
            lambda m: m["fitted"].update(n_clusters_="4"),
            "'fitted.n_clusters_': Input should be a valid integer, got '4'",
        ),
        (
            lambda m: m["params"].update(n_clusters=4.5),
            "'params.n_clusters': expected 'auto' or an integer >= 1, got 4.5",
        ),
        (lambda m: m.pop("fitted"), "field 'fitted': Field required"),
        (
            lambda m: m["params"].update(n_clusters=3),
            "'fitted.n_clusters_': 4 does not follow from n_clusters=3",
        ),
    ],
    ids=[
        "count",
        "nearest-clusters",
        "nearest-clusters-zero",
        "count-string",
        "param-float",
        "no-fitted",
        "param-count",
    ],
)
def test_resealed_inconsistent_sizes_are_refused(
    saved: Path, keyword_embeddings, change: Callable[[dict], object], expected: str
) -> None:
    reseal(saved, change)
    with pytest.raises(RouterFileError) as info:
        ClusterRouter.load(saved, embedder=keyword_embeddings)
    assert str(info.value).startswith(f"{saved / 'router.json'}: ")
    assert expected in str(info.value)


# ---------------------------------------------------------------- damaged router directories


def edit_json(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        meta = read_metadata(path)
        change(meta)
        (path / "router.json").write_text(json.dumps(meta))

    return mutate


def truncate(name: str, keep: float) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        file = arrays_file(path) if name == "arrays" else path / name
        file.write_bytes(file.read_bytes()[: int(file.stat().st_size * keep)])

    return mutate


def flip_byte(path: Path) -> None:
    data = bytearray(arrays_file(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    arrays_file(path).write_bytes(bytes(data))


def rewrite_arrays(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """Change the arrays and update the checksum, as a careless hand edit would."""

    def mutate(path: Path) -> None:
        arrays = read_arrays(path)
        change(arrays)
        arrays_file(path).write_bytes(save(arrays))
        seal_arrays(path, read_metadata(path))

    return mutate


def replace_arrays(payload: bytes) -> Callable[[Path], None]:
    """Put other bytes in the arrays file and update the checksum."""

    def mutate(path: Path) -> None:
        arrays_file(path).write_bytes(payload)
        seal_arrays(path, read_metadata(path))

    return mutate


DAMAGE = {
    "missing-directory": (lambda p: shutil.rmtree(p), "router.json is missing"),
    "missing-json": (lambda p: (p / "router.json").unlink(), "router.json is missing"),
    "missing-arrays": (lambda p: arrays_file(p).unlink(), "missing router arrays"),
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
        "'fitted.n_clusters_': 5 does not follow",
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
        "'params.cost_scale': Input should be 'linear' or 'log', got 'weird'",
    ),
    "wrong-n-clusters": (
        edit_json(lambda m: m["params"].update(n_clusters=5)),
        "'fitted.n_clusters_': 4 does not follow from n_clusters=5",
    ),
    "other-ensemble": (
        edit_json(lambda m: m["params"].update(cluster_scales=[1.0000001])),
        "modified after the router was saved",
    ),
    "wrong-dimension": (
        edit_json(lambda m: m["embedder"].update(dimension=8)),
        "modified after the router was saved",
    ),
    "truncated-arrays": (truncate("arrays", 0.6), "checksum"),
    "modified-arrays": (flip_byte, "checksum"),
    "arrays-wrong-shape": (
        rewrite_arrays(lambda a: a.update(cost_=a["cost_"][:, :2])),
        "array 'cost_': has shape (4, 2), expected (4, 3)",
    ),
    "arrays-missing-one": (rewrite_arrays(lambda a: a.pop("accuracy_")), "missing ['accuracy_']"),
    "arrays-a-pickle": (
        replace_arrays(pickle.dumps({"cost_": np.zeros((4, 3))})),
        "unreadable router arrays",
    ),
    "arrays-an-npz": (
        lambda p: replace_arrays(b"")(p) or np.savez(arrays_file(p), cost_=np.zeros(3)),
        "unreadable router arrays",
    ),
    "arrays-empty": (replace_arrays(b""), "unreadable router arrays"),
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
    assert "\n" not in message


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


def own_files(path: Path) -> list[str]:
    """What a save leaves: the lock, ``router.json`` and the one arrays file it names."""
    return sorted([".router.lock", read_metadata(path)["arrays"]["file"], "router.json"])


def test_saving_over_an_existing_router_replaces_it(
    small_jsonl: Path, tmp_path: Path, keyword_embeddings
) -> None:
    path = tmp_path / "router"
    first = ClusterRouter(n_clusters=4, nearest_clusters=2, embedder=keyword_embeddings).fit(
        small_jsonl
    )
    assert first.save(path) == path
    old_arrays = arrays_file(path)
    second = ClusterRouter(
        n_clusters=3, nearest_clusters=1, cost_scale="log", embedder=keyword_embeddings
    )
    second.fit(small_jsonl).save(path)

    loaded = ClusterRouter.load(path, embedder=keyword_embeddings)
    assert (loaded.n_clusters, loaded.nearest_clusters, loaded.cost_scale) == (3, 1, "log")
    assert loaded.cluster_centers_.shape == (2 + 3 + 6, 4)  # the ensemble's three fits
    assert [p.name for p in tmp_path.iterdir()] == ["router"]  # no staging or backup left
    assert sorted(p.name for p in path.iterdir()) == own_files(path)
    assert not old_arrays.exists()


def test_saving_keeps_the_other_files_of_the_directory(
    fitted: ClusterRouter, saved: Path, keyword_embeddings
) -> None:
    (saved / "NOTES.md").write_text("how this router was made")
    (saved / "plots").mkdir()
    (saved / "plots" / "pareto.png").write_bytes(b"\x89PNG")
    fitted.set_params(cost_scale="linear").save(saved)

    assert (saved / "NOTES.md").read_text() == "how this router was made"
    assert (saved / "plots" / "pareto.png").read_bytes() == b"\x89PNG"
    assert sorted(p.name for p in saved.iterdir()) == sorted(
        [*own_files(saved), "NOTES.md", "plots"]
    )
    assert ClusterRouter.load(saved, embedder=keyword_embeddings).cost_scale == "linear"


def test_saving_over_a_router_of_another_format_version_replaces_it(
    fitted: ClusterRouter, saved: Path, keyword_embeddings
) -> None:
    reseal(saved, lambda m: m.update(format_version=4))
    (saved / "NOTES.md").write_text("notes")
    fitted.save(saved)
    assert read_metadata(saved)["format_version"] == 5
    assert sorted(p.name for p in saved.iterdir()) == sorted([*own_files(saved), "NOTES.md"])
    ClusterRouter.load(saved, embedder=keyword_embeddings)


@pytest.mark.parametrize(
    ("directory", "name", "text", "refusal"),
    [
        pytest.param(
            "my-documents",
            "thesis.txt",
            "precious",
            "not a router folder; refusing",
            id="not-a-router",
        ),
        pytest.param(
            "service",
            "router.json",
            '{"routes": ["/a", "/b"]}',
            "not a langchain-avengers router file; refusing",
            id="another-programs-router-json",
        ),
    ],
)
def test_saving_over_a_directory_that_is_not_ours_refuses(
    fitted: ClusterRouter, tmp_path: Path, directory: str, name: str, text: str, refusal: str
) -> None:
    target = tmp_path / directory
    target.mkdir()
    (target / name).write_text(text)
    with pytest.raises(RouterFileError, match=refusal):
        fitted.save(target)
    assert [p.name for p in target.iterdir()] == [name]
    assert (target / name).read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == [directory]


def test_saving_into_an_empty_directory_or_over_leftovers(
    fitted: ClusterRouter, tmp_path: Path, keyword_embeddings
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    fitted.save(empty)
    ClusterRouter.load(empty, embedder=keyword_embeddings)

    killed = tmp_path / "killed"  # what a first save killed before router.json leaves
    killed.mkdir()
    for name in (".router.lock", f".arrays-{'a' * 32}.tmp", f"arrays-{'b' * 16}.safetensors"):
        (killed / name).write_bytes(b"partial")
    fitted.save(killed)
    assert sorted(p.name for p in killed.iterdir()) == own_files(killed)


def test_saving_over_a_file_refuses(fitted: ClusterRouter, tmp_path: Path) -> None:
    target = tmp_path / "router"
    target.write_text("not a directory")
    with pytest.raises(RouterFileError):
        fitted.save(target)
    assert target.read_text() == "not a directory"


def test_numpy_parameters_are_saved_as_json_numbers(
    fitted: ClusterRouter, tmp_path: Path, keyword_embeddings
) -> None:
    fitted.set_params(random_state=np.int64(3), beta=np.float32(2.5), n_init=np.int32(2))
    path = fitted.save(tmp_path / "numpy-params")
    params = ClusterRouter.load(path, embedder=keyword_embeddings).get_params()
    assert (params["random_state"], params["beta"], params["n_init"]) == (3, 2.5, 2)
    assert type(params["random_state"]) is int


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.models_.__setitem__(0, "acme\\tiny"), "field 'models[0]'"),
        (lambda r: r.set_params(random_state=np.random.RandomState(0)), "params.random_state"),
        (lambda r: r.accuracy_.__setitem__((0, 0), np.nan), "array 'accuracy_'"),
    ],
    ids=["backslash-id", "random-state-object", "nan-accuracy"],
)
def test_saving_what_load_would_refuse_is_refused(
    fitted: ClusterRouter, tmp_path: Path, change: Callable[[ClusterRouter], object], expected: str
) -> None:
    change(fitted)
    with pytest.raises(ValueError, match="cannot save this router to") as info:
        fitted.save(tmp_path / "router")
    assert expected in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["records.jsonl", "router.json"])
def test_loading_a_file_instead_of_a_router_folder_says_so(tmp_path: Path, name: str) -> None:
    file = tmp_path / name
    file.write_text('{"query": "What is 2 + 2?"}\n')
    with pytest.raises(RouterFileError) as info:
        ClusterRouter.load(file)
    assert str(info.value) == (
        f"{file}: is a file, not a router folder (a folder holding router.json)"
    )


def test_a_chat_model_given_a_file_as_router_says_it_is_a_file(tmp_path: Path) -> None:
    from langchain_avengers import AvengersChatModel

    file = tmp_path / "records.jsonl"
    file.write_text("{}\n")
    with pytest.raises(RouterFileError, match=r"records\.jsonl: is a file, not a router folder"):
        AvengersChatModel(router=str(file), api_key="sk-test")
