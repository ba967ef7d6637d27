"""The k-means ensemble a router is fitted with (scikit-learn's KMeans: the ``train`` extra)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from langchain_avengers._utils.extras import require


def ensemble_counts(n_clusters: int, scales: Sequence[float], n_samples: int) -> list[int]:
    """Cluster count of each k-means fit: ``round(scale * n_clusters)`` within [1, n_samples]."""
    return [int(min(n_samples, max(1, np.floor(s * n_clusters + 0.5)))) for s in scales]


def fit_kmeans_ensemble(
    vectors: np.ndarray, counts: Sequence[int], n_init: int, random_state: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Fit k-means once per count (seed ``random_state + i``); stacked centroids and labels.

    Returns:
        ``(centers, labels)``: centroids of all fits stacked as ``(sum(counts), d)`` rows,
        and ``(n_fits, n_samples)`` labels indexing those rows.
    """
    kmeans_class = require("sklearn.cluster", "train", "fitting a router").KMeans

    centers, labels, offset = [], [], 0
    for i, count in enumerate(counts):
        seed = None if random_state is None else random_state + i  # equal counts still differ
        kmeans = kmeans_class(n_clusters=count, n_init=n_init, random_state=seed).fit(vectors)
        centers.append(kmeans.cluster_centers_)
        labels.append(kmeans.labels_ + offset)
        offset += count
    return np.vstack(centers), np.vstack(labels)
