"""The k-means ensemble a router is fitted with (scikit-learn's KMeans: the ``train`` extra).

Threads: scikit-learn's k-means runs on OpenMP threads, one per core by default. On a machine
whose cores are busy with other work that oversubscribes them, and OpenMP threads that wait
for each other at every iteration then wait for the scheduler too: a fit on 15,361 queries
took 14 s on 2 quiet cores and 75 s at load 4, against 16-19 s at either load with one
thread. So the fit uses as many threads as there are idle cores (:func:`fit_threads`), at
least one; ``AVENGERS_FIT_THREADS`` overrides it. Fitting only: routing imports neither
scikit-learn nor threadpoolctl.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from langchain_avengers._utils.extras import require

FIT_THREADS_ENV = "AVENGERS_FIT_THREADS"
"""Environment variable: native threads of a fit. ``auto`` (default): the idle cores;
``all``: no limit (the libraries' own default, one per core); ``N``: N threads."""


def ensemble_counts(n_clusters: int, scales: Sequence[float], n_samples: int) -> list[int]:
    """Cluster count of each k-means fit: ``round(scale * n_clusters)`` within [1, n_samples]."""
    return [int(min(n_samples, max(1, np.floor(s * n_clusters + 0.5)))) for s in scales]


def fit_threads(setting: str | None = None) -> int | None:
    """Native threads (OpenMP, BLAS) a fit may use now; None: no limit.

    ``auto``: the cores this process may run on (its CPU affinity, e.g. a container's share)
    less the 1-minute load average, rounded, at least 1: all of them on an idle machine, one
    when other work keeps them busy. The load average counts this process's own recent work
    too, so a process that has kept one core busy for a minute fits on one thread fewer.

    Args:
        setting: ``auto``, ``all`` or a positive integer; default ``$AVENGERS_FIT_THREADS``,
            else ``auto``.

    Raises:
        ValueError: any other setting (the message names the variable).
    """
    setting = (setting or os.environ.get(FIT_THREADS_ENV) or "auto").strip().lower()
    if setting == "all":
        return None
    if setting != "auto":
        if not setting.isdigit() or int(setting) < 1:
            msg = f"{FIT_THREADS_ENV}: expected auto, all or a positive integer, got {setting!r}"
            raise ValueError(msg)
        return int(setting)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): trust the core count
        load = 0.0
    return max(1, min(cores or 1, int(np.floor((cores or 1) - load + 0.5))))


def fit_kmeans_ensemble(
    vectors: np.ndarray, counts: Sequence[int], n_init: int, random_state: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Fit k-means once per count (seed ``random_state + i``); stacked centroids and labels.

    Native thread pools are limited to :func:`fit_threads` meanwhile (threadpoolctl).

    Returns:
        ``(centers, labels)``: centroids of all fits stacked as ``(sum(counts), d)`` rows,
        and ``(n_fits, n_samples)`` labels indexing those rows.
    """
    kmeans_class = require("sklearn.cluster", "train", "fitting a router").KMeans
    limits = require("threadpoolctl", "train", "fitting a router").threadpool_limits

    centers, labels, offset = [], [], 0
    with limits(limits=fit_threads()):
        for i, count in enumerate(counts):
            seed = None if random_state is None else random_state + i  # equal counts differ
            kmeans = kmeans_class(n_clusters=count, n_init=n_init, random_state=seed).fit(vectors)
            centers.append(kmeans.cluster_centers_)
            labels.append(kmeans.labels_ + offset)
            offset += count
    return np.vstack(centers), np.vstack(labels)
