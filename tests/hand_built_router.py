"""The hand-built calibration data the ``ClusterRouter`` tests work out on paper.

Most tests fit on 12 calibration queries whose embeddings are exactly the unit vectors e1, e2,
e3 (4 queries each), so k-means with k = 3 finds exactly those centroids and every statistic
and score below can be worked out on paper. Models, in column order: ``m-big`` (strong,
expensive), ``m-mid``, ``m-small`` (weak, cheap).

Per cluster (mean score, mean USD per query), every model measured on every query:

======  ===================  =====================  ==========================
cluster m-big                m-mid                  m-small
======  ===================  =====================  ==========================
e1      1, 0.01              0.75, 0.003            0.5, 0.001
e2      2/3, 0.02            1, 0.002               0, 0.001
e3      1, 0.01              0.5, 0.005             0.25, 0.001
======  ===================  =====================  ==========================

Unmeasured scores and costs are checked by hand on their own small data
(``test_router_statistics.py``). Test modules import these helpers by name (``tests/`` is
on ``pythonpath``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from langchain_avengers import CalibrationRecord, ClusterRouter, RoutingDecision

BIG, MID, SMALL = "m-big", "m-mid", "m-small"
E1, E2, E3 = np.eye(3)
PAPER = {"scoring": "minmax", "cluster_scales": (1.0,), "shrinkage": 0.0}
"""The paper's score on one k-means fit: what the hand-worked tables check."""
QUERY_12 = np.array([1.0, 0.5, 0.2])  # nearest e1, then e2, then e3
SIMS_12 = np.array([1.0, 0.5, 0.2]) / math.sqrt(1.29)


def record(query: str, scores: dict, costs: dict) -> CalibrationRecord:
    return CalibrationRecord(
        query=query,
        records=scores,
        usages={m: {"cost": c} for m, c in costs.items() if c is not None},
    )


def three_group_data() -> tuple[list[CalibrationRecord], np.ndarray]:
    rows, vectors = [], []
    small_1 = [1, 0, 0, 1]
    mid_1, mid_cost_1 = [1, 1, 0, 1], [0.002, 0.004, 0.002, 0.004]
    for i in range(4):
        rows.append(
            record(
                f"g1-{i}",
                {BIG: True, MID: mid_1[i], SMALL: small_1[i]},
                {BIG: 0.01, MID: mid_cost_1[i], SMALL: 0.001},
            )
        )
        vectors.append(E1)
    big_2 = [1, 1, 0, 2 / 3]
    for i in range(4):
        rows.append(
            record(
                f"g2-{i}",
                {BIG: big_2[i], MID: 1, SMALL: False},
                {BIG: 0.02, MID: 0.002, SMALL: 0.001},
            )
        )
        vectors.append(E2)
    mid_3, mid_cost_3, small_3 = [0, 1, 0, 1], [0.004, 0.005, 0.006, 0.005], [0, 1, 0, 0]
    for i in range(4):
        rows.append(
            record(
                f"g3-{i}",
                {BIG: 1, MID: mid_3[i], SMALL: small_3[i]},
                {BIG: 0.01, MID: mid_cost_3[i], SMALL: 0.001},
            )
        )
        vectors.append(E3)
    return rows, np.array(vectors)


def fit_three_groups(**params: object) -> ClusterRouter:
    rows, vectors = three_group_data()
    params = {"n_clusters": 3, "nearest_clusters": 2, "cost_scale": "linear", **PAPER, **params}
    return ClusterRouter(**params).fit(rows, embeddings=vectors)


def cluster_of(router: ClusterRouter, axis: int) -> int:
    return int(np.argmax(router.cluster_centers_[:, axis]))


def scores_of(decision: RoutingDecision) -> dict[str, float]:
    return {c.model: c.score for c in decision.candidates}


# per-cluster x = alpha * acc~ + (1 - alpha) * (1 - cost~), worked out by hand
def linear_x(cluster: int, alpha: float) -> dict[str, float]:
    b = 1 - alpha
    return [
        {SMALL: b, MID: 0.5 * alpha + (7 / 9) * b, BIG: alpha},  # cost~ mid = 2/9
        {SMALL: b, MID: alpha + (18 / 19) * b, BIG: (2 / 3) * alpha},  # cost~ mid = 1/19
        {SMALL: b, MID: alpha / 3 + (5 / 9) * b, BIG: alpha},  # acc~ mid 1/3, cost~ 4/9
    ][cluster]


def log_x(cluster: int, alpha: float) -> dict[str, float]:
    b = 1 - alpha
    mid_cost = [  # (log q - log q_min) / (log q_max - log q_min)
        math.log(3) / math.log(10),
        math.log(2) / math.log(20),
        math.log(5) / math.log(10),
    ][cluster]
    mid_acc = [0.5, 1.0, 1 / 3][cluster]
    big_acc = [1.0, 2 / 3, 1.0][cluster]
    return {SMALL: b, MID: mid_acc * alpha + (1 - mid_cost) * b, BIG: big_acc * alpha}


def summed(x_of, clusters: Sequence[int], alpha: float) -> dict[str, float]:
    return {m: sum(x_of(c, alpha)[m] for c in clusters) for m in (BIG, MID, SMALL)}


def one_cluster_router(rows: list[CalibrationRecord], **params: object) -> ClusterRouter:
    vectors = np.tile(E1, (len(rows), 1))
    params = {"n_clusters": 1, "nearest_clusters": 1, "cost_scale": "linear", **PAPER, **params}
    return ClusterRouter(**params).fit(rows, embeddings=vectors)
