"""What a router's parameters and routing arguments may be, and what ``n_clusters="auto"`` picks.

Parameters are checked when fitting and when loading a saved router, so both refuse the same
values with the same message.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import numpy as np

AUTO_MIN_CLUSTERS = 2
AUTO_MAX_CLUSTERS = 60
"""The paper's k, which ``n_clusters="auto"`` reaches at about 3,500 calibration queries."""


def auto_n_clusters(n_samples: int) -> int:
    """The number of clusters ``n_clusters="auto"`` fits on ``n_samples`` calibration queries.

    ``round(sqrt(n))``, at least 2 and at most 60 (and never more than ``n_samples``): 10
    clusters for 100 queries, 12 for 150, 24 for 600, 60 from about 3,500. Chosen on inner
    validation splits against fixed 60 and other rules, see ``benchmarks/select_n_clusters.py``.
    """
    k = int(np.floor(np.sqrt(n_samples) + 0.5))
    return max(1, min(n_samples, AUTO_MAX_CLUSTERS, max(AUTO_MIN_CLUSTERS, k)))


def fit_sizes(params: Mapping[str, Any], n_samples: int) -> tuple[int, int]:
    """Check a router's parameters for ``n_samples`` queries; the cluster count and neighbours.

    Args:
        params: The router's parameters by name (``get_params(deep=False)``), so this module
            needs no router class.
        n_samples: Number of calibration queries.

    Returns:
        The cluster count (``auto_n_clusters(n_samples)`` for ``n_clusters="auto"``) and
        ``nearest_clusters`` clamped to it.

    Raises:
        ValueError: a parameter of the wrong type or out of range, naming it.
    """
    requested, nearest_clusters = params["n_clusters"], params["nearest_clusters"]
    cost_scale, scoring, scales = params["cost_scale"], params["scoring"], params["cluster_scales"]
    weights, shrinkage = params["cluster_weights"], params["shrinkage"]
    auto = requested == "auto"
    n_clusters = auto_n_clusters(n_samples) if auto else requested
    checks = [
        (
            auto or (is_int(n_clusters) and 1 <= int(n_clusters) <= n_samples),
            f"n_clusters must be 'auto' or an int in [1, {n_samples}] (the number of "
            f"calibration queries), got {requested!r}; choose fewer clusters "
            "(n_clusters=..., avengers --n-clusters) or give more calibration data",
        ),
        (
            is_int(nearest_clusters) and int(nearest_clusters) >= 1,
            "nearest_clusters must be an int >= 1 (clamped to the number of clusters), "
            f"got {nearest_clusters!r}",
        ),
        (
            cost_scale in ("linear", "log"),
            f"cost_scale must be 'linear' or 'log', got {cost_scale!r}",
        ),
        (
            scoring in ("utility", "minmax"),
            f"scoring must be 'utility' or 'minmax', got {scoring!r}",
        ),
        (
            is_scale_list(scales),
            "cluster_scales must be a non-empty sequence of positive numbers (cluster "
            f"counts relative to n_clusters), got {scales!r}",
        ),
        (
            weights in ("uniform", "softmax"),
            f"cluster_weights must be 'uniform' or 'softmax', got {weights!r}",
        ),
        (shrinkage >= 0, f"shrinkage must be >= 0, got {shrinkage!r}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ValueError(msg)
    return int(n_clusters), min(int(nearest_clusters), int(n_clusters))


def is_int(value: object) -> TypeGuard[numbers.Integral]:
    """Python or numpy integers (grid searches hand out numpy ones), never bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_alpha(value: object, where: str = "alpha") -> float:
    """A number in [0, 1]: the weight of accuracy against cost.

    The one check of alpha: the router, the chat model, bindings, calls and agent runs use it.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = (
            f"{where}: expected a number in [0, 1] (1 buys the best expected answer, 0 the "
            f"cheapest), got {value!r}"
        )
        raise ValueError(msg)
    if not (math.isfinite(value) and 0.0 <= float(value) <= 1.0):
        msg = f"{where} must be in [0, 1], got {value!r}"
        raise ValueError(msg)
    return float(value)


def is_scale_list(value: object) -> bool:
    """A non-empty sequence (not a string) of finite positive numbers."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        return False
    return all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < float(v) < np.inf
        for v in value
    )


def check_nearest_clusters(
    value: object, n_clusters: int, where: str = "nearest_clusters"
) -> int | None:
    """None (the router's fitted setting) or an int in [1, ``n_clusters``].

    The one check of a routing call's cluster count, wherever it is given.
    """
    if value is None:
        return None
    if not is_int(value) or not 1 <= int(value) <= n_clusters:
        msg = (
            f"{where} must be an int in [1, {n_clusters}] (the router's clusters) or None, "
            f"got {value!r}"
        )
        raise ValueError(msg)
    return int(value)


def candidate_columns(models: list[str], allowed_models: Sequence[str] | None) -> tuple[int, ...]:
    """Columns of ``models`` that ``allowed_models`` names (all for ``None``), sorted.

    Raises:
        ValueError: an unknown model id or an empty list.
    """
    if allowed_models is None:
        return tuple(range(len(models)))
    if isinstance(allowed_models, str):
        allowed_models = [allowed_models]
    unknown = [m for m in allowed_models if m not in models]
    if unknown:
        msg = f"allowed_models: unknown model id(s) {unknown}; the router knows {models}"
        raise ValueError(msg)
    if not allowed_models:
        msg = "allowed_models is empty: at least one candidate model is needed"
        raise ValueError(msg)
    return tuple(sorted({models.index(m) for m in allowed_models}))
