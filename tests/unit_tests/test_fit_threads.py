"""How many native threads a router fit uses: the idle cores, or AVENGERS_FIT_THREADS."""

from __future__ import annotations

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from langchain_avengers.routing import kmeans
from langchain_avengers.routing.kmeans import FIT_THREADS_ENV, fit_kmeans_ensemble, fit_threads


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FIT_THREADS_ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)


@pytest.mark.parametrize(
    ("load", "threads"), [(0.0, 2), (0.4, 2), (0.6, 1), (1.0, 1), (4.0, 1), (40.0, 1)]
)
def test_auto_uses_the_idle_cores_and_at_least_one(
    two_cores: None, monkeypatch: pytest.MonkeyPatch, load: float, threads: int
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert fit_threads() == threads


def test_without_a_load_average_auto_uses_every_core(
    two_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_load() -> tuple[float, float, float]:
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", no_load)
    assert fit_threads() == 2


def test_the_variable_overrides_and_bad_values_name_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FIT_THREADS_ENV, "3")
    assert fit_threads() == 3
    monkeypatch.setenv(FIT_THREADS_ENV, "all")
    assert fit_threads() is None
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv(FIT_THREADS_ENV, bad)
        with pytest.raises(ValueError, match=rf"^{FIT_THREADS_ENV}: expected auto, all or a"):
            fit_threads()


def test_the_kmeans_fit_runs_under_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[int]] = []

    class Spy:
        def __init__(self, **options: object) -> None:
            self.options = options

        def fit(self, vectors: np.ndarray) -> Spy:
            seen.append([pool["num_threads"] for pool in threadpool_info()])
            self.cluster_centers_ = vectors[: self.options["n_clusters"]]  # type: ignore[index]
            self.labels_ = np.zeros(len(vectors), dtype=int)
            return self

    import sklearn.cluster

    monkeypatch.setattr(sklearn.cluster, "KMeans", Spy)
    monkeypatch.setattr(kmeans, "fit_threads", lambda: 1)
    fit_kmeans_ensemble(np.eye(4), [2, 2], n_init=1, random_state=0)
    assert len(seen) == 2
    assert seen[0]
    assert seen == [[1] * len(seen[0])] * 2  # every native pool at one thread, in each fit
