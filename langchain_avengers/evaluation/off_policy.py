"""Off-policy evaluation: what a candidate router would have scored and cost on logged traffic.

Logged records (``avengers harvest traces``) hold, per query, the one model the deployed router
chose, its score, its cost and the probability with which it was chosen (its propensity ``p``).
For a candidate router that picks model ``c(x)`` for query ``x``:

- inverse propensity scoring (IPS): ``mean(1[a = c(x)] * r / p)``, unbiased whenever every model
  the candidate picks had a chance under the logging router (exploration gives every eligible
  model at least ``explore / n_eligible``);
- doubly robust (DR): ``mean(g(x, c(x)) + 1[a = c(x)] * (r - g(x, a)) / p)`` with the reward
  model ``g`` the candidate router's own expected accuracy (cost) on the query's nearest
  clusters: unbiased like IPS, and with a smaller variance where ``g`` is close.

Both are computed for accuracy and for cost (USD per 1,000 queries, as elsewhere), with
percentile bootstrap intervals over the logged queries, next to the logging router's own value
(the mean of what it logged). Diagnostics say when an estimate cannot be trusted: candidate
choices the logging router could not make (no exploration on that query, or a model it never
served), too few logged calls where the logging router chose, by exploring, what the candidate
would choose, and a small effective sample size of the importance weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from langchain_avengers.evaluation.results import PER_1K
from langchain_avengers.records.data import CalibrationData
from langchain_avengers.records.format import RecordsError
from langchain_avengers.routing.embeddings import embed_texts
from langchain_avengers.routing.router import ClusterRouter, RecordsLike, as_calibration_data

__all__ = [
    "DEFAULT_OPE_CONFIDENCE",
    "MAX_UNSUPPORTED_SHARE",
    "MIN_EFFECTIVE_SAMPLES",
    "MIN_EXPLORED_MATCHES",
    "Interval",
    "OffPolicyEvaluation",
    "estimate_off_policy",
    "logged_choices",
]

DEFAULT_OPE_CONFIDENCE = 0.95
"""Coverage of the bootstrap intervals of off-policy estimates."""
MIN_EFFECTIVE_SAMPLES = 50.0
"""Below this effective sample size of the IPS weights an estimate is flagged unreliable."""
MIN_EXPLORED_MATCHES = 30
"""Below this many logged calls that were explored (propensity under 0.5) and agree with the
candidate's choice, its departures from the logging router rest on too little evidence."""
MAX_UNSUPPORTED_SHARE = 0.05
"""Above this share of queries where the candidate picks a model the logging router could not
have chosen, the estimates are biased (those queries count as zero reward in IPS)."""
EXPLORED_BELOW = 0.5
"""A logged choice with a propensity under this was an exploration: under any exploration rate
below one half, the greedy model's propensity is above it and every other model's below."""


@dataclass(frozen=True)
class Interval:
    """An estimate with its bootstrap interval."""

    value: float
    low: float
    high: float

    def contains(self, truth: float) -> bool:
        """Whether ``truth`` lies within the interval (ends included)."""
        return self.low <= truth <= self.high


@dataclass(frozen=True)
class OffPolicyEvaluation:
    """A candidate router's estimated accuracy and cost on logged traffic, with diagnostics.

    Costs are USD per 1,000 queries; intervals hold at ``confidence`` over bootstrap resamples
    of the logged queries.
    """

    alpha: float
    n_logged: int
    confidence: float
    accuracy: dict[str, Interval]
    """``{"ips": ..., "dr": ...}``."""
    cost: dict[str, Interval]
    """``{"ips": ..., "dr": ...}``, USD per 1,000 queries."""
    logging_accuracy: Interval
    """What the logging router scored on the same queries (its logged mean)."""
    logging_cost: Interval
    n_matched: int
    """Logged queries whose logged model is the one the candidate picks."""
    n_explored_matches: int
    """Of those, the ones the logging router chose by exploring (propensity under 0.5)."""
    n_unsupported: int
    """Queries where the candidate picks a model the logging router could not have chosen."""
    effective_sample_size: float
    """``(sum w)^2 / sum w^2`` of the IPS weights ``1[a = c(x)] / p``."""
    usage: dict[str, float]
    """Share of the logged queries the candidate sends to each model."""
    warnings: list[str] = field(default_factory=list)
    """Why the estimates may not be trusted; empty when every diagnostic passed."""

    @property
    def reliable(self) -> bool:
        """Whether every diagnostic passed."""
        return not self.warnings

    def describe(self) -> str:
        """A few lines for people."""
        level = f"{self.confidence:.0%} interval"

        def pct(i: Interval) -> str:
            return f"{i.value:.1%} [{i.low:.1%}, {i.high:.1%}]"

        def usd(i: Interval) -> str:
            return f"${i.value:.4g} [${i.low:.4g}, ${i.high:.4g}]"

        lines = [
            f"off-policy estimate at alpha={self.alpha:g} on {self.n_logged:,} logged queries "
            f"({level}; cost per 1,000 queries):",
            f"  candidate (doubly robust):  accuracy {pct(self.accuracy['dr'])}, "
            f"cost {usd(self.cost['dr'])}",
            f"  candidate (IPS):            accuracy {pct(self.accuracy['ips'])}, "
            f"cost {usd(self.cost['ips'])}",
            f"  logging router (observed):  accuracy {pct(self.logging_accuracy)}, "
            f"cost {usd(self.logging_cost)}",
            f"  overlap: {self.n_matched:,} queries agree with the logged choice "
            f"({self.n_explored_matches:,} of them explored), {self.n_unsupported:,} "
            f"unsupported, effective sample size {self.effective_sample_size:.0f}",
        ]
        lines += [f"  unreliable: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {**asdict(self), "reliable": self.reliable}


def logged_choices(data: CalibrationData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per logged row: the chosen column, its propensity, its score and its cost.

    Raises:
        RecordsError: a row without a propensity (a calibration record, not a logged one),
            or with several, or a logged answer without a cost.
    """
    if data.propensities is None:
        msg = (
            "logged records: no record has 'propensities'; off-policy evaluation needs records "
            "logged from a router (avengers harvest traces)"
        )
        raise RecordsError(msg)
    logged = ~np.isnan(data.propensities)
    per_row = logged.sum(axis=1)
    bad = np.flatnonzero(per_row != 1)
    if len(bad):
        row = int(bad[0])
        msg = (
            f"logged records: row {row + 1} ({data.queries[row][:40]!r}) has "
            f"{int(per_row[row])} propensities; a logged record has exactly one (the model "
            f"that answered); {len(bad)} such row(s)"
        )
        raise RecordsError(msg)
    rows = np.arange(len(data))
    chosen = logged.argmax(axis=1)
    costs = data.costs[rows, chosen]
    if np.isnan(costs).any():
        row = int(np.flatnonzero(np.isnan(costs))[0])
        msg = f"logged records: row {row + 1} has no cost for its logged model (usages.<model>)"
        raise RecordsError(msg)
    return chosen, data.propensities[rows, chosen], data.scores[rows, chosen], costs


def estimate_off_policy(
    router: ClusterRouter,
    logged: RecordsLike,
    *,
    alpha: float = 0.5,
    embeddings: np.ndarray | None = None,
    confidence: float = DEFAULT_OPE_CONFIDENCE,
    n_resamples: int = 1000,
    random_state: int | None = 0,
) -> OffPolicyEvaluation:
    """Estimate a fitted router's accuracy and cost on logged traffic (IPS and doubly robust).

    Args:
        router: The fitted candidate router.
        logged: Logged records (a JSONL path, records or :class:`CalibrationData`), one
            propensity per record.
        alpha: The candidate's alpha.
        embeddings: Optional precomputed embeddings of the logged queries (router's embedder).
        confidence: Coverage of the bootstrap intervals, in (0, 1).
        n_resamples: Bootstrap resamples of the logged queries.
        random_state: Seed of the resampling, so a report is reproducible.

    Returns:
        The estimates, the logging router's observed value and the diagnostics; a
        :class:`UserWarning`-worthy problem is listed in ``warnings`` (the caller decides).

    Raises:
        RecordsError: records that are not logged ones (see :func:`logged_choices`).
        ValueError: a bad ``confidence`` or ``n_resamples``.
    """
    if not 0 < confidence < 1:
        msg = f"confidence must be strictly between 0 and 1, got {confidence!r}"
        raise ValueError(msg)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        msg = f"n_resamples must be a positive int, got {n_resamples!r}"
        raise ValueError(msg)
    data = as_calibration_data(logged)
    chosen, propensity, score, cost = logged_choices(data)
    vectors = embed_texts(router.get_embedder(), data.queries) if embeddings is None else embeddings
    batch = router.score_batch(vectors)
    picks = batch.choose(alpha)
    picked_models = [batch.models[j] for j in picks]
    logged_models = [data.models[j] for j in chosen]
    rows = np.arange(len(data))
    match = np.array([p == m for p, m in zip(picked_models, logged_models, strict=True)])
    # the reward model at the candidate's pick and at the logged model (when the router knows it)
    column = {m: j for j, m in enumerate(batch.models)}
    logged_col = np.array([column.get(m, -1) for m in logged_models])
    known = logged_col >= 0
    values = {}
    for name, reward, model in (
        ("accuracy", score, batch.expected_accuracy),
        ("cost", cost * PER_1K, batch.expected_cost * PER_1K),
    ):
        at_pick = model[rows, picks]
        at_logged = np.where(known, model[rows, np.maximum(logged_col, 0)], 0.0)
        ips = np.where(match, reward / propensity, 0.0)
        dr = at_pick + np.where(match, (reward - at_logged) / propensity, 0.0)
        values[name] = (ips, dr, reward)
    per_row = np.vstack([v for name in ("accuracy", "cost") for v in values[name]])
    means = per_row.mean(axis=1)
    boot = _bootstrap(per_row, n_resamples, random_state)
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, tail, axis=1), np.quantile(boot, 1 - tail, axis=1)
    intervals = [
        Interval(float(m), float(lo), float(hi)) for m, lo, hi in zip(means, low, high, strict=True)
    ]
    weights = np.where(match, 1.0 / propensity, 0.0)
    ess = float(weights.sum() ** 2 / (weights**2).sum()) if weights.any() else 0.0
    never_logged = ~np.isin(picked_models, sorted(set(logged_models)))
    unsupported = int(((~match) & ((propensity >= 1.0) | never_logged)).sum())
    explored = int((match & (propensity < EXPLORED_BELOW)).sum())
    shares = np.bincount(picks, minlength=len(batch.models)) / len(data)
    result = OffPolicyEvaluation(
        alpha=float(alpha),
        n_logged=len(data),
        confidence=confidence,
        accuracy={"ips": intervals[0], "dr": intervals[1]},
        cost={"ips": intervals[3], "dr": intervals[4]},
        logging_accuracy=intervals[2],
        logging_cost=intervals[5],
        n_matched=int(match.sum()),
        n_explored_matches=explored,
        n_unsupported=unsupported,
        effective_sample_size=ess,
        usage={m: float(s) for m, s in zip(batch.models, shares, strict=True)},
    )
    result.warnings.extend(_diagnose(result, picked_models, set(logged_models)))
    return result


def _bootstrap(per_row: np.ndarray, n_resamples: int, random_state: int | None) -> np.ndarray:
    """``(n_series, n_resamples)`` means of row resamples (the same rows for every series)."""
    n = per_row.shape[1]
    rng = np.random.default_rng(random_state)
    out = np.empty((per_row.shape[0], n_resamples))
    for start in range(0, n_resamples, 100):  # bounded memory: 100 resamples at a time
        size = min(100, n_resamples - start)
        drawn = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n)
        out[:, start : start + size] = per_row @ counts.T / n
    return out


def _diagnose(
    result: OffPolicyEvaluation,
    picked_models: Sequence[str],
    logged_models: set[str],
) -> list[str]:
    problems = []
    unseen = sorted(set(picked_models) - logged_models)
    if unseen:
        problems.append(f"the candidate picks model(s) {unseen} that never answered a logged call")
    share = result.n_unsupported / result.n_logged
    if share > MAX_UNSUPPORTED_SHARE:
        problems.append(
            f"too little overlap: on {result.n_unsupported:,} queries ({share:.0%}) the "
            "candidate picks a model the logging router could not have chosen (it did not "
            "explore there); deploy with explore > 0 to log such choices"
        )
    if result.n_explored_matches < MIN_EXPLORED_MATCHES:
        problems.append(
            f"too few explored calls: {result.n_explored_matches} logged calls were explored "
            f"and agree with the candidate's choice (want at least {MIN_EXPLORED_MATCHES})"
        )
    if result.effective_sample_size < MIN_EFFECTIVE_SAMPLES:
        problems.append(
            f"effective sample size {result.effective_sample_size:.0f} of the importance "
            f"weights is below {MIN_EFFECTIVE_SAMPLES:.0f}"
        )
    return problems
