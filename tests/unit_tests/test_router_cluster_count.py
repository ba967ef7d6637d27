"""ClusterRouter's cluster count (``n_clusters='auto'`` follows the data size) and
``nearest_clusters``
clamped to it, with the warning for too many clusters.

The geometry (12 queries on the unit vectors e1, e2, e3; models ``m-big``, ``m-mid``,
``m-small``) and its per-cluster table are in ``tests/hand_built_router.py``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hand_built_router import QUERY_12, cluster_of, fit_three_groups

from langchain_avengers import ClusterRouter
from langchain_avengers.routing.router import auto_n_clusters

# the hand-built geometry has 4 queries a cluster, below what fitting calls enough
pytestmark = pytest.mark.filterwarnings("ignore:.*calibration queries hold a median")


# ---------------------------------------------------------------- cluster count and
# nearest_clusters


@pytest.mark.parametrize(
    ("n", "k"),
    [
        (1, 1),
        (2, 2),
        (12, 3),
        (25, 5),
        (100, 10),
        (150, 12),
        (600, 24),
        (2205, 47),
        (3540, 59),
        (3541, 60),
        (9000, 60),
    ],
)
def test_auto_cluster_count_follows_the_data_size(n: int, k: int) -> None:
    assert auto_n_clusters(n) == k


def test_auto_is_the_default_and_stays_a_parameter(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(embedder=keyword_embeddings)
    assert router.get_params()["n_clusters"] == "auto"
    router.fit(small_jsonl)
    assert router.n_clusters == "auto"
    assert (router.n_clusters_, router.nearest_clusters_) == (9, 4)  # 90 queries
    assert router.cluster_counts_.tolist() == [5, 9, 18]  # scales 0.5, 1, 2 (4.5 rounds up)
    assert router.cluster_centers_.shape == (5 + 9 + 18, 4)
    assert len(router.route("What is 2 plus 2?", 0.5).clusters) == 3 * 4


def test_nearest_clusters_is_clamped_to_the_cluster_count() -> None:
    router = fit_three_groups(
        nearest_clusters=4
    )  # the trial: n_clusters 2 with the default nearest_clusters failed
    assert (router.nearest_clusters, router.n_clusters_, router.nearest_clusters_) == (4, 3, 3)
    decision = router.route(QUERY_12, 0.5)
    assert decision.nearest_clusters == 3
    assert [c.cluster for c in decision.clusters] == [cluster_of(router, a) for a in range(3)]
    assert (
        router.route(QUERY_12, 0.5, nearest_clusters=1).nearest_clusters == 1
    )  # explicit, in range: honoured


def test_explicit_cluster_count_is_honoured(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=5, nearest_clusters=2, embedder=keyword_embeddings).fit(
        small_jsonl
    )
    assert (router.n_clusters_, router.nearest_clusters_) == (5, 2)
    assert router.cluster_counts_.tolist() == [3, 5, 10]
    assert router.cluster_sizes_.sum() == 3 * 90  # every query in one cluster of each fit


def test_too_many_clusters_for_the_data_warns_once(small_jsonl: Path, keyword_embeddings) -> None:
    router = ClusterRouter(n_clusters=60, embedder=keyword_embeddings)
    with pytest.warns(UserWarning, match="calibration queries hold a median") as caught:
        router.fit(small_jsonl)
    messages = [str(w.message) for w in caught if "calibration queries" in str(w.message)]
    assert len(messages) == 1
    median = float(np.median(router.cluster_sizes_))
    assert median < 5
    assert messages[0].startswith(
        f"60 cluster(s) of 90 calibration queries hold a median of {median:g} queries each"
    )
    assert "use n_clusters='auto' (9 clusters for 90 queries) or give more" in messages[0]
    assert caught[0].filename == __file__  # points at the caller's fit


def test_auto_on_enough_data_does_not_warn(small_jsonl: Path, keyword_embeddings) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ClusterRouter(embedder=keyword_embeddings).fit(small_jsonl)
