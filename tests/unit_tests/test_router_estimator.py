"""ClusterRouter as a scikit-learn estimator: parameters, cloning, fitted attributes, and the
parameter and input checks that fail at fit or route time.

The geometry (12 queries on the unit vectors e1, e2, e3; models ``m-big``, ``m-mid``,
``m-small``) and its per-cluster table are in ``tests/hand_built_router.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hand_built_router import QUERY_12, SMALL, fit_three_groups, three_group_data
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from langchain_avengers import ClusterRouter, RecordsError

# the hand-built geometry has 4 queries a cluster, below what fitting calls enough
pytestmark = pytest.mark.filterwarnings("ignore:.*calibration queries hold a median")


# ---------------------------------------------------------------- sklearn conventions


PARAM_NAMES = {
    "n_clusters",
    "nearest_clusters",
    "embedder",
    "cost_scale",
    "cluster_weights",
    "beta",
    "shrinkage",
    "n_init",
    "random_state",
    "show_progress",
    "scoring",
    "cluster_scales",
}


def test_init_only_stores_parameters() -> None:
    router = ClusterRouter(n_clusters=-3, nearest_clusters=99, cost_scale="cubic")  # type: ignore[arg-type]
    assert router.n_clusters == -3
    assert router.nearest_clusters == 99
    assert router.cost_scale == "cubic"
    assert set(router.get_params()) == PARAM_NAMES
    assert not [k for k in vars(router) if k.endswith("_")]


def test_get_params_set_params_and_clone(keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=7, embedder=keyword_embeddings)
    params = router.get_params()
    assert params["n_clusters"] == 7
    assert params["nearest_clusters"] == 4
    assert params["embedder"] is keyword_embeddings
    assert (params["cost_scale"], params["scoring"]) == ("linear", "utility")
    assert params["cluster_scales"] == (0.5, 1.0, 2.0)
    assert router.set_params(nearest_clusters=2, cost_scale="log") is router
    assert (router.nearest_clusters, router.cost_scale) == (2, "log")
    copy = clone(router)
    assert copy is not router
    assert copy.get_params()["nearest_clusters"] == 2
    assert copy.get_params()["n_clusters"] == 7
    with pytest.raises(ValueError, match="Invalid parameter"):
        router.set_params(n_cluster=3)


def test_scikit_learn_sees_an_estimator(keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=3, nearest_clusters=2, embedder=keyword_embeddings)
    # changed parameters only, sorted by name, as scikit-learn prints them
    assert (
        repr(router)
        == f"ClusterRouter(embedder={keyword_embeddings!r}, n_clusters=3, nearest_clusters=2)"
    )
    assert repr(ClusterRouter()) == "ClusterRouter()"
    with pytest.raises(NotFittedError, match="This ClusterRouter instance is not fitted yet"):
        check_is_fitted(router)
    rows, vectors = three_group_data()
    check_is_fitted(router.fit(rows, embeddings=vectors))
    copy = clone(router)  # parameters only (the embedder deep-copied), not fitted
    assert repr(copy) == repr(router).replace(repr(keyword_embeddings), repr(copy.embedder))
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)


def test_fit_returns_self_and_fitted_attributes_end_with_underscore() -> None:
    rows, vectors = three_group_data()
    router = ClusterRouter(n_clusters=3, nearest_clusters=2)
    before = set(vars(router))
    assert router.fit(rows, embeddings=vectors) is router
    public = {k for k in set(vars(router)) - before if not k.startswith("_")}
    assert public == {
        "n_clusters_",
        "nearest_clusters_",
        "models_",
        "cluster_centers_",
        "cluster_sizes_",
        "accuracy_",
        "cost_",
        "n_scored_",
        "n_costed_",
        "global_accuracy_",
        "global_cost_",
        "n_features_in_",
        "embedder_id_",
        "data_fingerprint_",
        "n_samples_fit_",
        "cluster_counts_",
        "log_prices_",
    }
    assert router.get_params()["n_clusters"] == 3  # fitting does not touch parameters


def test_unfitted_router_raises_not_fitted_error(tmp_path: Path) -> None:
    router = ClusterRouter(n_clusters=3)
    with pytest.raises(NotFittedError):
        router.route(QUERY_12, 0.5)
    with pytest.raises(NotFittedError):
        router.route("What is 2 + 2?", 0.5)
    with pytest.raises(NotFittedError):
        router.route_batch(QUERY_12[None, :], 0.5)
    with pytest.raises(NotFittedError):
        router.save(tmp_path / "r")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": 13}, "n_clusters"),  # more clusters than the 12 queries
        ({"n_clusters": "many"}, "n_clusters must be 'auto' or an int"),
        ({"n_clusters": 2.5}, "n_clusters"),
        ({"n_clusters": 3, "nearest_clusters": 0}, "nearest_clusters"),
        ({"n_clusters": 3, "nearest_clusters": 1.5}, "nearest_clusters"),
        ({"cost_scale": "cubic"}, "cost_scale"),
        ({"cluster_weights": "random"}, "cluster_weights"),
        ({"shrinkage": -1.0}, "shrinkage"),
    ],
)
def test_invalid_parameters_fail_at_fit(params: dict, match: str) -> None:
    rows, vectors = three_group_data()
    router = ClusterRouter(**{"n_clusters": 3, "nearest_clusters": 2, **params})
    with pytest.raises(ValueError, match=match):
        router.fit(rows, embeddings=vectors)


def test_wrong_embeddings_shape_at_fit() -> None:
    rows, vectors = three_group_data()
    with pytest.raises(ValueError, match=r"expected shape \(12, n_features\)"):
        ClusterRouter(n_clusters=3, nearest_clusters=2).fit(rows, embeddings=vectors[:5])


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_alpha_outside_unit_interval(alpha: float) -> None:
    router = fit_three_groups()
    with pytest.raises(ValueError, match="alpha"):
        router.route(QUERY_12, alpha)
    with pytest.raises(ValueError, match="alpha"):
        router.route_batch(QUERY_12[None, :], alpha)


def test_query_embedding_of_the_wrong_size() -> None:
    router = fit_three_groups()
    with pytest.raises(ValueError, match="expected 3 features"):
        router.route(np.ones(4), 0.5)
    with pytest.raises(ValueError, match="expected 3 features"):
        router.route_batch(np.ones((2, 5)), 0.5)


@pytest.mark.parametrize("nearest_clusters", [0, 4])
def test_nearest_clusters_override_out_of_range(nearest_clusters: int) -> None:
    with pytest.raises(ValueError, match="nearest_clusters"):
        fit_three_groups().route(QUERY_12, 0.5, nearest_clusters=nearest_clusters)


def test_a_failed_refit_leaves_the_fitted_router_as_it_was() -> None:
    router = fit_three_groups()
    before = router.route(QUERY_12, 0.5)
    accuracy, cost = router.accuracy_.copy(), router.cost_.copy()
    rows, vectors = three_group_data()
    no_cost_for_small = [  # same three models, but m-small's cost is never known
        r.model_copy(update={"usages": {m: u for m, u in r.usages.items() if m != SMALL}})
        for r in rows
    ]
    mirrored = vectors[:, ::-1].copy()  # would give other clusters, other statistics
    with pytest.raises(RecordsError, match="m-small"):
        router.fit(no_cost_for_small, embeddings=mirrored)
    np.testing.assert_array_equal(router.accuracy_, accuracy)
    np.testing.assert_array_equal(router.cost_, cost)
    assert router.route(QUERY_12, 0.5) == before
