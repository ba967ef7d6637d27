"""Learning from logged traffic, measured where the truth is known.

The shared data sets hold every model's score and cost on every query, so a deployment can be
simulated and every counterfactual checked. For each data set and trial (a seeded shuffle):

1. 150 queries are the calibration set; the rest is split 70/30 into a *stream* (the traffic
   the router serves) and a *test* set (never logged, used for AIQ);
2. the logging router, fitted on the calibration set, is "deployed" on the stream at
   ``--log-alpha`` with exploration ``--explore``: with that probability a query goes to a
   model drawn uniformly from the pool (the greedy one included), so the answering model's
   propensity is ``(1 - explore) * 1[greedy] + explore / n_models``; the answer's true score
   is logged as its feedback, with its cost and propensity (a logged record);
3. (a) a second router, fitted on 150 other queries (from the test part), is evaluated
   off-policy on the logs at alphas 0.1, 0.3, 0.5, 0.7 and 0.9 (IPS and doubly robust, 95% bootstrap
   intervals, ``estimate_off_policy``); its true value is what its choices really score and
   cost on the stream. Reported: how often the interval holds the truth (coverage), the mean
   absolute error and the interval width;
4. (b) routers are fitted on calibration + logs with inverse-propensity weights (the default,
   clipped at 100), on calibration + logs unweighted (every logged outcome weight 1, an
   ablation), and on calibration + the whole stream with every model's score (the router fitted
   on all the data: the ceiling); each is scored on the test set (AIQ over the alpha grid).
   Reported: the share of the AIQ gap between the calibration-only router and the ceiling that
   refitting closes, and what exploring cost on the stream against the greedy router.

    python benchmarks/off_policy.py [--data-dir DIR] [--trials 8] [--explore 0.1]

Writes ``benchmarks/off_policy.md`` (``--output``). 8 trials took 1,407 s on 2 cores shared
with other jobs (load average about 15); most of it is k-means on the calibration + stream
queries, once per trial (the three routers fitted on them share one clustering).
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

import langchain_avengers.routing.router as router_module
from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.evaluation.evaluate import DEFAULT_ALPHAS, evaluate_fitted
from langchain_avengers.evaluation.off_policy import estimate_off_policy
from langchain_avengers.routing.embeddings import embed_texts

DATASETS = ("openrouter_4models", "routerbench_11models")
N_CALIBRATION = 150
EVAL_ALPHAS = (0.1, 0.3, 0.5, 0.7, 0.9)
ESTIMATORS = ("ips", "dr")
METRICS = ("accuracy", "cost")


@dataclass
class Tally:
    """What one data set's trials measured."""

    covered: dict[tuple[str, str], list[bool]] = field(default_factory=dict)
    errors: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    widths: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    flagged: int = 0
    aiq: dict[str, list[float]] = field(default_factory=dict)
    explore_acc: list[float] = field(default_factory=list)
    explore_cost: list[float] = field(default_factory=list)
    greedy_cost: list[float] = field(default_factory=list)
    n_stream: int = 0
    n_test: int = 0

    def add(self, key: tuple[str, str], truth: float, low: float, value: float, high: float):
        self.covered.setdefault(key, []).append(low <= truth <= high)
        self.errors.setdefault(key, []).append(abs(value - truth))
        self.widths.setdefault(key, []).append(high - low)


_KMEANS_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_fit_kmeans = router_module.fit_kmeans_ensemble


def cached_kmeans(vectors, counts, n_init, random_state):  # type: ignore[no-untyped-def]
    """The k-means ensemble, computed once per set of vectors: the three routers fitted on
    calibration + stream share their queries, so their (seeded, deterministic) clusterings are
    identical; only the statistics differ. Saves two of the three largest fits per trial."""
    key = (hash(vectors.tobytes()), tuple(counts), n_init, random_state)
    if key not in _KMEANS_CACHE:
        _KMEANS_CACHE.clear()
        _KMEANS_CACHE[key] = _fit_kmeans(vectors, counts, n_init, random_state)
    return _KMEANS_CACHE[key]


router_module.fit_kmeans_ensemble = cached_kmeans  # type: ignore[assignment]


def logged_part(
    stream: CalibrationData, chosen: np.ndarray, propensity: np.ndarray
) -> CalibrationData:
    """The stream as logged records: only the chosen model's score and cost are known."""
    rows = np.arange(len(stream))
    scores = np.full_like(stream.scores, np.nan)
    costs = np.full_like(stream.costs, np.nan)
    props = np.full_like(stream.scores, np.nan)
    scores[rows, chosen] = stream.scores[rows, chosen]
    costs[rows, chosen] = stream.costs[rows, chosen]
    props[rows, chosen] = propensity
    return CalibrationData(
        queries=stream.queries,
        models=stream.models,
        scores=scores,
        costs=costs,
        datasets=stream.datasets,
        propensities=props,
    )


def fit(data: CalibrationData, vectors: np.ndarray, **kwargs: float) -> ClusterRouter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-cluster and barely-measured notices
        return ClusterRouter().fit(data, embeddings=vectors, **kwargs)


def aiq(router: ClusterRouter, test: CalibrationData, vectors: np.ndarray) -> float:
    return evaluate_fitted(router, test, alphas=DEFAULT_ALPHAS, embeddings=vectors).figures.aiq


def run_trial(
    data: CalibrationData,
    vectors: np.ndarray,
    seed: int,
    explore: float,
    log_alpha: float,
    tally: Tally,
) -> None:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    cal, rest = order[:N_CALIBRATION], order[N_CALIBRATION:]
    n_stream = int(0.7 * len(rest))
    stream_rows, test_rows = rest[:n_stream], rest[n_stream:]
    stream, test = data.subset(stream_rows), data.subset(test_rows)
    tally.n_stream, tally.n_test = len(stream_rows), len(test_rows)
    n_models = len(data.models)

    logging_router = fit(data.subset(cal), vectors[cal])
    greedy_names = logging_router.route_batch(vectors[stream_rows], log_alpha)
    greedy = np.array([data.models.index(m) for m in greedy_names])
    explored = rng.random(len(stream_rows)) < explore
    drawn = rng.integers(0, n_models, size=len(stream_rows))
    chosen = np.where(explored, drawn, greedy)
    propensity = (1 - explore) * (chosen == greedy) + explore / n_models
    logged = logged_part(stream, chosen, propensity)
    rows = np.arange(len(stream_rows))
    greedy_cost = stream.costs[rows, greedy].mean()
    tally.explore_acc.append(
        stream.scores[rows, chosen].mean() - stream.scores[rows, greedy].mean()
    )
    tally.explore_cost.append(stream.costs[rows, chosen].mean() / greedy_cost - 1)
    tally.greedy_cost.append(greedy_cost * 1000)

    # (a) off-policy estimates of a second router against its true value on the stream
    other_rows = test_rows[:N_CALIBRATION]
    candidate = fit(data.subset(other_rows), vectors[other_rows])
    for alpha in EVAL_ALPHAS:
        picks = np.array(
            [data.models.index(m) for m in candidate.route_batch(vectors[stream_rows], alpha)]
        )
        truth = {
            "accuracy": stream.scores[rows, picks].mean(),
            "cost": stream.costs[rows, picks].mean() * 1000,
        }
        estimate = estimate_off_policy(
            candidate, logged, alpha=alpha, embeddings=vectors[stream_rows], random_state=seed
        )
        tally.flagged += not estimate.reliable
        for metric in METRICS:
            intervals = getattr(estimate, metric)
            for name in ESTIMATORS:
                i = intervals[name]
                tally.add((metric, name), truth[metric], i.low, i.value, i.high)

    # (b) refit on calibration + logs, against calibration only and calibration + full stream
    both = np.concatenate([cal, stream_rows])
    mixed = CalibrationData.concatenate([data.subset(cal), logged])
    routers = {
        "calibration only": logging_router,
        "calibration + logs (IPS-weighted)": fit(mixed, vectors[both]),
        "calibration + logs (unweighted)": fit(mixed, vectors[both], max_weight=1.0),
        "calibration + stream, every score": fit(data.subset(both), vectors[both]),
    }
    for name, router in routers.items():
        tally.aiq.setdefault(name, []).append(aiq(router, test, vectors[test_rows]))


def report(name: str, tally: Tally, trials: int, explore: float, log_alpha: float) -> list[str]:
    lines = [
        f"## {name}",
        "",
        f"{trials} trials; {N_CALIBRATION} calibration queries, a stream of {tally.n_stream:,} "
        f"logged queries (explore={explore:g}, alpha={log_alpha:g}), {tally.n_test:,} test "
        "queries.",
        "",
        "### (a) Off-policy estimate of a second router vs its true value on the stream",
        "",
        f"95% bootstrap intervals; {trials} trials x {len(EVAL_ALPHAS)} alphas "
        f"({', '.join(map(str, EVAL_ALPHAS))}) = {trials * len(EVAL_ALPHAS)} estimates per row.",
        "",
        "| metric | estimator | coverage | mean abs. error | mean interval width |",
        "|---|---|---|---|---|",
    ]
    for metric in METRICS:
        for est in ESTIMATORS:
            key = (metric, est)
            unit = "" if metric == "accuracy" else "$"
            scale = 100 if metric == "accuracy" else 1
            suffix = " pts" if metric == "accuracy" else " /1k"
            lines.append(
                f"| {metric} | {est.upper()} | {np.mean(tally.covered[key]):.0%} "
                f"({sum(tally.covered[key])}/{len(tally.covered[key])}) | "
                f"{unit}{np.mean(tally.errors[key]) * scale:.3g}{suffix} | "
                f"{unit}{np.mean(tally.widths[key]) * scale:.3g}{suffix} |"
            )
    lines += [
        "",
        f"Estimates flagged unreliable by the diagnostics: {tally.flagged} of "
        f"{trials * len(EVAL_ALPHAS)}.",
        "",
        "### (b) Refitting on calibration + logs (AIQ on the test queries)",
        "",
        "| router | AIQ (mean over trials) | share of the gap closed |",
        "|---|---|---|",
    ]
    base = np.array(tally.aiq["calibration only"])
    ceiling = np.array(tally.aiq["calibration + stream, every score"])
    gap = ceiling.mean() - base.mean()
    for router, values in tally.aiq.items():
        closed = (np.mean(values) - base.mean()) / gap if gap > 0 else float("nan")
        lines.append(f"| {router} | {np.mean(values):.4f} | {closed:.0%} |")
    refit = np.array(tally.aiq["calibration + logs (IPS-weighted)"])
    wins = int((refit > base).sum())
    lines += [
        "",
        f"Gap between calibration only and the ceiling: {gap:.4f} AIQ; the IPS-weighted refit "
        f"beats calibration only in {wins} of {trials} trials.",
        "",
        f"Exploration cost on the stream (against the greedy logging router, which spends "
        f"${np.mean(tally.greedy_cost):.4g} per 1,000 queries): accuracy "
        f"{np.mean(tally.explore_acc) * 100:+.2f} points, cost "
        f"{np.mean(tally.explore_cost):+.1%}.",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--explore", type=float, default=0.1)
    parser.add_argument("--log-alpha", type=float, default=0.5)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).resolve().parent / "off_policy.md"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    lines = [
        "# Off-policy evaluation and refitting from logged traffic",
        "",
        "Written by `python benchmarks/off_policy.py "
        f"--trials {args.trials} --explore {args.explore:g} --log-alpha {args.log_alpha:g}` "
        "(see its docstring for the protocol).",
        "",
    ]
    for name in DATASETS:
        data = load_data(args.data_dir, name)
        vectors = embed_texts(ClusterRouter().get_embedder(), data.queries)
        tally = Tally()
        for trial in range(args.trials):
            run_trial(data, vectors, trial, args.explore, args.log_alpha, tally)
            print(
                f"{name}: trial {trial + 1}/{args.trials} ({time.perf_counter() - started:.0f} s)"
            )
        lines += report(name, tally, args.trials, args.explore, args.log_alpha)
    lines.append(f"Total time: {time.perf_counter() - started:.0f} s on this machine.")
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
