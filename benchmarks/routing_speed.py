"""Routing speed of the default configuration with the default (WordLlama) embedder.

Measures, on this machine: fit time on both shared data sets (cold in a fresh process, with
the embedding cache warm, and uncached), single-query ``route`` latency with and without
embedding, ``route_batch`` throughput, the router's size on disk and peak RSS, and a
diagnosis of where ``route_batch`` on texts spends its time.

    python benchmarks/routing_speed.py [--data-dir DIR] > speed.md

``--data-dir`` defaults to ``shared/data`` beside the repository (``../shared/data``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from _common import DEFAULT_DATA_DIR, load_data

from langchain_avengers import CalibrationData, ClusterRouter, WordLlamaEmbeddings
from langchain_avengers.routing.embeddings import embed_texts

FIT_FILE = "openrouter_4models"
OTHER_FILE = "routerbench_11models"
N_LATENCY = 2000
N_WARMUP = 100
N_BATCH = 1000
REPEATS = 3
BATCH_REPEATS = 5
COLD_RUNS = 2
DIAGNOSIS_REPEATS = 5
ALPHAS = (0.0, 0.3, 0.5, 0.7, 1.0)
WORDLLAMA_BATCH = WordLlamaEmbeddings().batch_size
DIAGNOSIS_BATCHES = (256, 64, 16, 1)
"""Batch sizes compared; 256 was the package default before this diagnosis."""
TARGET_ROUTE_P50_MS = 1.0
TARGET_FIT_S = 20.0
TARGET_FILE_MB = 2.0


@dataclass(frozen=True)
class Latency:
    """Per-call latency distribution in milliseconds."""

    p50: float
    p90: float
    p99: float
    mean: float
    n: int

    @classmethod
    def from_ns(cls, samples: Sequence[int]) -> Latency:
        ms = np.asarray(samples, dtype=float) / 1e6
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99), float(ms.mean()), len(ms))

    def cells(self) -> list[str]:
        return [f"{self.p50:.3f}", f"{self.p90:.3f}", f"{self.p99:.3f}", f"{self.mean:.3f}"]


# ---------------------------------------------------------------------------- helpers


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """High-water resident set size (Linux reports KiB)."""
    return resource.getrusage(who).ru_maxrss / 1024


def process_peak_mib() -> float:
    """This process's own peak RSS (``VmHWM``); ``ru_maxrss`` would include the parent's
    peak, because Linux carries it across ``fork`` + ``exec``."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mib()


def seconds(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def min_seconds(call: Callable[[], Any], repeats: int = REPEATS) -> float:
    """Best of ``repeats`` runs: the least disturbed by other load on a shared machine."""
    return min(seconds(call) for _ in range(repeats))


def min_median_seconds(call: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, float]:
    runs = [seconds(call) for _ in range(repeats)]
    return min(runs), float(np.median(runs))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# ---------------------------------------------------------------------------- fitting


def cold_fit_child(path: Path) -> None:
    """Run in a fresh process: the first fit pays the WordLlama import and model load."""
    started = time.perf_counter()
    data = CalibrationData.from_path(path)
    load_s = time.perf_counter() - started
    fit_s = seconds(lambda: ClusterRouter().fit(data))
    print(json.dumps({"load_s": load_s, "fit_s": fit_s, "peak_rss_mib": process_peak_mib()}))


def embed_peak_child(path: Path, batch_size: int) -> None:
    """Run in a fresh process: peak RSS of embedding a whole file at one batch size."""
    data = CalibrationData.from_path(path)
    embedder = WordLlamaEmbeddings(batch_size=batch_size)
    embedder.embed_array(["warm-up"])
    before = process_peak_mib()
    embed_s = seconds(lambda: embed_texts(embedder, data.queries, cache=None))
    peak = process_peak_mib()
    print(json.dumps({"embed_s": embed_s, "before_mib": before, "peak_rss_mib": peak}))


def run_child(*args: str) -> dict[str, float]:
    """Run this script in a fresh interpreter with ``args``; its last stdout line is JSON."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def cold_fit(path: Path) -> dict[str, Any]:
    """The best of ``COLD_RUNS`` fresh-process fits, with every run's fit time."""
    runs = [run_child("--cold-fit", str(path)) for _ in range(COLD_RUNS)]
    best: dict[str, Any] = dict(min(runs, key=lambda run: run["fit_s"]))
    best["all_fit_s"] = [run["fit_s"] for run in runs]
    return best


def warm_fits(data: CalibrationData) -> dict[str, float]:
    """In this process (WordLlama already loaded): first fit, cached fit, uncached fit."""
    embedder = WordLlamaEmbeddings()
    first_s = seconds(lambda: ClusterRouter().fit(data))  # fills the process embedding cache
    cached_s = min_seconds(lambda: ClusterRouter().fit(data))
    vectors = embed_texts(embedder, data.queries, cache=None)
    embed_s = min_seconds(lambda: embed_texts(embedder, data.queries, cache=None))
    kmeans_s = min_seconds(lambda: ClusterRouter().fit(data, embeddings=vectors))
    return {"first_s": first_s, "cached_s": cached_s, "embed_s": embed_s, "kmeans_s": kmeans_s}


def fit_section(
    datasets: dict[str, CalibrationData], colds: dict[str, dict[str, Any]]
) -> tuple[str, float]:
    rows = []
    cold_openrouter = float("nan")
    for name, data in datasets.items():
        cold = colds[name]
        warm = warm_fits(data)
        if name == FIT_FILE:
            cold_openrouter = cold["fit_s"]
        rows.append(
            [
                f"{name} ({len(data)})",
                f"{cold['fit_s']:.2f} (runs: {', '.join(f'{t:.2f}' for t in cold['all_fit_s'])})",
                f"{cold['process_s']:.2f}",
                f"{warm['first_s']:.2f}",
                f"{warm['cached_s']:.2f}",
                f"{warm['embed_s']:.2f} + {warm['kmeans_s']:.2f} = "
                f"{warm['embed_s'] + warm['kmeans_s']:.2f}",
                f"{cold['load_s']:.2f}",
                f"{cold['peak_rss_mib']:.0f}",
            ]
        )
    header = [
        "data set (queries)",
        f"cold fit s, best of {COLD_RUNS} fresh processes",
        "cold process s (best run)",
        "first in-process fit s",
        "warm fit s (cached embeddings)",
        "uncached: embed + k-means fit = total s",
        "JSONL load s",
        "cold process peak RSS MiB (VmHWM)",
    ]
    text = (
        "## Fit (default `ClusterRouter()`: k = round(sqrt(n)), k-means fits of k/2, k and 2k "
        "clusters, n_init=4 each; embedding included)\n\n" + table(header, rows) + "\n\n"
        "- *cold fit*: `ClusterRouter().fit(data)` as the first call in a fresh Python process: "
        "includes importing wordllama and loading its weights (one-off), embedding every "
        "query and k-means. *cold process*: the whole child process, interpreter start and "
        "`import langchain_avengers` included.\n"
        "- *first in-process fit*: WordLlama already loaded, embedding cache empty for this "
        "file. *warm fit*: a repeat `fit(data)`; the process-wide embedding cache "
        '(`embed_texts(cache="process")`, the default) returns every vector, so this is '
        "hashing + k-means only, NOT an embedding measurement.\n"
        "- *uncached*: `embed_texts(embedder, queries, cache=None)` then "
        "`fit(data, embeddings=...)`, the honest cost of a fit with the model loaded. "
        f"Warm/uncached figures are the best of {REPEATS} runs; cold and first fits are "
        "single runs.\n"
    )
    return text, cold_openrouter


# ---------------------------------------------------------------------------- routing


def held_out_texts(source: CalibrationData, fitted_on: CalibrationData) -> list[str]:
    """Distinct texts of ``source`` that the router never saw, in file order."""
    seen = set(fitted_on.queries)
    return [t for t in dict.fromkeys(source.queries) if t not in seen]


def route_latency(router: ClusterRouter, queries: Sequence[Any]) -> Latency:
    samples = []
    for i, query in enumerate(queries):
        alpha = ALPHAS[i % len(ALPHAS)]
        started = time.perf_counter_ns()
        router.route(query, alpha)
        samples.append(time.perf_counter_ns() - started)
    return Latency.from_ns(samples)


def embed_latency(texts: Sequence[str]) -> Latency:
    embedder = WordLlamaEmbeddings()
    samples = []
    for text in texts:
        started = time.perf_counter_ns()
        embed_texts(embedder, [text], cache=None)
        samples.append(time.perf_counter_ns() - started)
    return Latency.from_ns(samples)


def latency_section(router: ClusterRouter, texts: list[str]) -> tuple[str, Latency]:
    warmup, measured = texts[:N_WARMUP], texts[N_WARMUP : N_WARMUP + N_LATENCY]
    route_latency(router, warmup)
    vectors = embed_texts(router.get_embedder(), measured, cache=None)
    with_text = route_latency(router, measured)
    with_vector = route_latency(router, list(vectors))
    embedding = embed_latency(measured)
    rows = [
        ["`route(text, alpha)` (embedding included)", *with_text.cells()],
        ["`route(embedding, alpha)` (routing alone)", *with_vector.cells()],
        ["`embed_texts([text], cache=None)` (embedding alone)", *embedding.cells()],
    ]
    text = (
        f"## Single-query latency (router fitted on all of {FIT_FILE}; {with_text.n} distinct "
        f"{OTHER_FILE} queries it never saw, after {len(warmup)} warm-up calls; alpha cycles "
        f"through {ALPHAS}; `time.perf_counter_ns`)\n\n"
        + table(["call", "p50 ms", "p90 ms", "p99 ms", "mean ms"], rows)
        + "\n\n`route(text)` never uses the embedding cache (`cache=None`), so every call "
        "embeds.\n"
    )
    return text, with_text


def batch_rows(router: ClusterRouter, label: str, queries: Any) -> list[str]:
    best, median = min_median_seconds(lambda: router.route_batch(queries, 0.5), BATCH_REPEATS)
    return [label, f"{1000 * best:.1f}", f"{1000 * median:.1f}", f"{len(queries) / best:,.0f}"]


def batch_section(router: ClusterRouter, held_out: list[str], fit_texts: list[str]) -> str:
    unseen = held_out[:N_BATCH]
    openrouter = fit_texts[:N_BATCH]
    vectors = embed_texts(router.get_embedder(), unseen, cache=None)
    rows = [
        batch_rows(router, f"{N_BATCH} {OTHER_FILE} texts (unseen)", unseen),
        batch_rows(router, f"{N_BATCH} {FIT_FILE} texts (first {N_BATCH} of the file)", openrouter),
        batch_rows(router, f"{N_BATCH} precomputed embeddings", vectors),
    ]
    return (
        f"## `route_batch` throughput (alpha 0.5, {BATCH_REPEATS} runs)\n\n"
        + table(["input", "best ms", "median ms", "queries/s (best)"], rows)
        + "\n\nText batches embed with `cache=None` (no cache hit), like `route`.\n"
    )


# ---------------------------------------------------------------------------- size


def size_section(router: ClusterRouter) -> tuple[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        target = router.save(Path(tmp) / "router")
        files = sorted(p for p in target.rglob("*") if p.is_file())
        sizes = {p.name: p.stat().st_size for p in files}
        load_s = min_seconds(lambda: ClusterRouter.load(target))
    total_mb = sum(sizes.values()) / 1e6
    rows = [[name, f"{size:,}"] for name, size in sizes.items()]
    rows.append(["**total**", f"{sum(sizes.values()):,} ({total_mb:.3f} MB)"])
    text = (
        f"## Router on disk (`save`, fitted on {FIT_FILE})\n\n"
        + table(["file", "bytes"], rows)
        + f"\n\n`ClusterRouter.load` (checksum + arrays, embedder not yet loaded): "
        f"{1000 * load_s:.1f} ms.\n"
    )
    return text, total_mb


# ---------------------------------------------------------------------------- diagnosis


def token_counts(texts: Sequence[str]) -> np.ndarray:
    """Real (unpadded) WordLlama token count per text."""
    from langchain_avengers.routing.embeddings import _load_wordllama  # diagnosis only

    model = _load_wordllama(256)
    return np.array([int(sum(e.attention_mask)) for e in model.tokenize(list(texts))])


def padded_tokens(lengths: np.ndarray, batch_size: int) -> int:
    """Token slots WordLlama allocates: every batch is padded to its longest text."""
    chunks = [lengths[i : i + batch_size] for i in range(0, len(lengths), batch_size)]
    return int(sum(len(c) * c.max() for c in chunks))


def with_batch_size(router: ClusterRouter, batch_size: int) -> ClusterRouter:
    """The same fitted router with a WordLlama embedder of another batch size (same id)."""
    return router.set_params(embedder=WordLlamaEmbeddings(batch_size=batch_size))


def interleaved_best_seconds(
    router: ClusterRouter, variants: dict[str, tuple[list[str], int]], repeats: int
) -> dict[str, float]:
    """Best time of ``route_batch`` per variant (texts, WordLlama batch size).

    The variants take turns within every repeat, so load from other processes on the
    machine hits them all alike instead of whichever happened to run during a burst.
    """
    best = dict.fromkeys(variants, float("inf"))
    try:
        for _ in range(repeats):
            for label, (texts, batch_size) in variants.items():
                with_batch_size(router, batch_size)
                elapsed = seconds(partial(router.route_batch, texts, 0.5))
                best[label] = min(best[label], elapsed)
    finally:
        router.set_params(embedder=None)
    return best


def profile_rows(call: Callable[[], Any], top: int) -> list[list[str]]:
    """The ``top`` functions by self time while running ``call``."""
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values())
    ranked = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    return [
        [
            f"`{Path(f).name}:{line}({func})`",
            f"{1000 * tt:.1f}",
            f"{100 * tt / total:.0f}%",
            str(calls),
        ]
        for (f, line, func), (_cc, calls, tt, _ct, _callers) in ranked
    ]


def batch_size_rows(router: ClusterRouter, corpora: dict[str, list[str]]) -> list[list[str]]:
    rows = []
    for label, texts in corpora.items():
        lengths = token_counts(texts)
        by_length = [texts[i] for i in np.argsort(lengths, kind="stable")]
        variants = {str(b): (texts, b) for b in DIAGNOSIS_BATCHES}
        variants["sorted"] = (by_length, WORDLLAMA_BATCH)
        best = interleaved_best_seconds(router, variants, DIAGNOSIS_REPEATS)
        rows.append(
            [
                label,
                f"{lengths.sum():,} (p50 {np.median(lengths):.0f}, max {lengths.max()})",
                f"{padded_tokens(lengths, 256) / lengths.sum():.1f}x",
                f"{padded_tokens(lengths, WORDLLAMA_BATCH) / lengths.sum():.1f}x",
                *[f"{1000 * best[name]:.0f}" for name in variants],
            ]
        )
    return rows


def embed_peak_rows(data_dir: Path, name: str) -> list[list[str]]:
    rows = []
    for batch_size in (256, 64, 16):
        child = run_child("--embed-peak", str(data_dir / f"{name}.jsonl"), str(batch_size))
        rows.append(
            [
                str(batch_size),
                f"{child['embed_s']:.2f}",
                f"{child['before_mib']:.0f}",
                f"{child['peak_rss_mib']:.0f}",
            ]
        )
    return rows


def diagnosis_section(
    router: ClusterRouter, corpora: dict[str, list[str]], data_dir: Path, vectors: np.ndarray
) -> str:
    header = [
        f"{N_BATCH} texts",
        "real tokens",
        "padded/real at batch 256",
        f"padded/real at batch {WORDLLAMA_BATCH}",
        *[
            f"route_batch ms, batch {b}" + (" (default)" if b == WORDLLAMA_BATCH else "")
            for b in DIAGNOSIS_BATCHES
        ],
        f"batch {WORDLLAMA_BATCH}, texts sorted by length",
    ]
    sizes = table(header, batch_size_rows(router, corpora))
    longest = max(corpora, key=lambda k: int(token_counts(corpora[k]).max()))
    batch_profile = table(
        ["function", "self ms", "share", "calls"],
        profile_rows(lambda: router.route_batch(corpora[longest], 0.5), top=6),
    )
    route_profile = table(
        ["function", "self ms", "share", "calls"],
        profile_rows(lambda: [router.route(v, 0.5) for v in vectors], top=8),
    )
    peaks = table(
        ["WordLlama batch_size", "embed s", "RSS before MiB", "peak RSS MiB"],
        embed_peak_rows(data_dir, FIT_FILE),
    )
    slot_mb = WORDLLAMA_BATCH * int(token_counts(corpora[longest]).max()) * 256 * 4 / 1e6
    return (
        "## Diagnosis: where `route_batch` on texts spends its time\n\n"
        f"`WordLlamaEmbeddings` calls `wordllama.embed(texts, batch_size={WORDLLAMA_BATCH})`; "
        "wordllama pads every batch to its longest text (no truncation), gathers a "
        "`(batch, longest, 256)` float32 tensor, multiplies it by the mask (a second tensor "
        "of that size) and sums in `avg_pool`. The work therefore grows with batch size x "
        "longest text in the batch, not with the real number of tokens. Below, the same "
        "fitted router with only the embedder's `batch_size` changed (same embedder "
        f"identity; measured here, the package is unchanged); best of {DIAGNOSIS_REPEATS} "
        "interleaved runs.\n\n"
        + sizes
        + f"\n\ncProfile of `route_batch` on the {longest} texts (default batch size), "
        f"by self time:\n\n{batch_profile}\n\n"
        f"One batch of {WORDLLAMA_BATCH} texts padded to the longest {longest} text "
        f"({slot_mb:.0f} MB per tensor) also drives memory. Peak RSS of a fresh process "
        f"embedding all of {FIT_FILE} (`embed_texts(..., cache=None)`):\n\n{peaks}\n\n"
        f"cProfile of {len(vectors)} `route(embedding)` calls (routing alone), by self "
        f"time:\n\n{route_profile}\n"
    )


# ---------------------------------------------------------------------------- report


def targets_section(route: Latency, fit_s: float, file_mb: float) -> str:
    rows = [
        [
            "single-query `route(text)` p50, embedding included",
            f"{route.p50:.3f} ms",
            f"<= {TARGET_ROUTE_P50_MS:g} ms",
            verdict(route.p50 <= TARGET_ROUTE_P50_MS),
        ],
        [
            f"cold fit on {FIT_FILE} (3,559 queries), embedding + model load included",
            f"{fit_s:.2f} s",
            f"<= {TARGET_FIT_S:g} s",
            verdict(fit_s <= TARGET_FIT_S),
        ],
        [
            "router directory on disk",
            f"{file_mb:.3f} MB",
            f"<= {TARGET_FILE_MB:g} MB",
            verdict(file_mb <= TARGET_FILE_MB),
        ],
    ]
    return "## Targets\n\n" + table(["measure", "value", "target", "result"], rows)


def rss_section(marks: list[tuple[str, float]], colds: dict[str, dict[str, Any]]) -> str:
    rows = [[f"this process, after {label}", f"{mib:.0f}"] for label, mib in marks]
    rows += [[f"cold-fit process, {name}", f"{c['peak_rss_mib']:.0f}"] for name, c in colds.items()]
    return (
        "## Peak RSS (high-water mark: `ru_maxrss` in this process, `VmHWM` in the fresh "
        "cold-fit processes)\n\n" + table(["where", "MiB"], rows)
    )


def preamble(model_load_s: float, load_before: float) -> str:
    return (
        "# Routing speed\n\n"
        "Command: `python benchmarks/routing_speed.py`. Default embedder "
        f"(WordLlama l2_supercat 256-d, batch_size {WORDLLAMA_BATCH}), default "
        f"`ClusterRouter()`. nproc {os.cpu_count()}; 1-min load average at start "
        f"{load_before:.2f}, at end {os.getloadavg()[0]:.2f} (other work on the machine "
        "inflates timings; best-of-N figures are the least disturbed). WordLlama import + "
        f"weight load in this process (one-off, first embed call): {model_load_s:.2f} s."
    )


def run_benchmark(data_dir: Path) -> str:
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    colds = {name: cold_fit(data_dir / f"{name}.jsonl") for name in (FIT_FILE, OTHER_FILE)}
    marks = [("imports", peak_rss_mib())]
    datasets = {name: load_data(data_dir, name) for name in (FIT_FILE, OTHER_FILE)}
    marks.append(("loading both JSONL files", peak_rss_mib()))
    model_load_s = seconds(lambda: WordLlamaEmbeddings().embed_array(["warm-up"]))
    fit_text, cold_fit_s = fit_section(datasets, colds)
    marks.append(("fits (embedding both files, batch 256)", peak_rss_mib()))
    router = ClusterRouter().fit(datasets[FIT_FILE])
    held_out = held_out_texts(datasets[OTHER_FILE], datasets[FIT_FILE])
    latency_text, route = latency_section(router, held_out)
    marks.append(("single-query latency", peak_rss_mib()))
    batch_text = batch_section(router, held_out, datasets[FIT_FILE].queries)
    marks.append(("route_batch runs", peak_rss_mib()))
    size_text, file_mb = size_section(router)
    corpora = {OTHER_FILE: held_out[:N_BATCH], FIT_FILE: datasets[FIT_FILE].queries[:N_BATCH]}
    vectors = embed_texts(router.get_embedder(), held_out[:N_LATENCY], cache=None)
    diagnosis = diagnosis_section(router, corpora, data_dir, vectors)
    return "\n\n".join(
        [
            preamble(model_load_s, load_before),
            targets_section(route, cold_fit_s, file_mb),
            fit_text,
            latency_text,
            batch_text,
            size_text,
            rss_section(marks, colds),
            diagnosis,
            f"_Wall time: {time.perf_counter() - started:.1f} s._",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cold-fit", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--embed-peak", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_fit is not None:
        cold_fit_child(args.cold_fit)
    elif args.embed_peak is not None:
        embed_peak_child(Path(args.embed_peak[0]), int(args.embed_peak[1]))
    else:
        print(run_benchmark(args.data_dir))


if __name__ == "__main__":
    main()
