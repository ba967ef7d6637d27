"""Query embeddings: the offline default embedder, embedder identity and an embedding cache.

Any LangChain :class:`~langchain_core.embeddings.Embeddings` can embed queries for a router.
The default, :class:`WordLlamaEmbeddings`, runs locally from weights shipped in the
``wordllama`` wheel: no API key, no torch, no download.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field

from langchain_avengers._utils.progress import progress

__all__ = [
    "MAX_EMBEDDED_CHARS",
    "EmbeddingCache",
    "WordLlamaEmbeddings",
    "bounded_text",
    "embed_texts",
    "embedder_identity",
    "process_cache",
]

_PROGRESS_BATCH = 1024
MAX_EMBEDDED_CHARS = 8192
"""Most characters of one text that routing and fitting embed: a longer text is embedded from
its beginning and its end (where a request's instructions usually are; :func:`bounded_text`),
so time and memory stay flat however long a message is. 1.7x the longest query of both shared
data sets (4,860 characters), which are therefore embedded whole."""


def _import_wordllama() -> Any:
    """Import wordllama without letting it reconfigure the application's root logger.

    wordllama calls ``logging.basicConfig(level=INFO)`` at import time, which would make every
    library's INFO logs appear on the user's stderr.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama  # imported lazily: ~0.3 s
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return wordllama


_MODELS: dict[int, Any] = {}
_MODELS_LOCK = threading.Lock()


def _load_wordllama(dim: int) -> Any:
    """WordLlama at ``dim``, loaded once per process even when many threads ask at once."""
    model = _MODELS.get(dim)
    if model is None:
        with _MODELS_LOCK:
            model = _MODELS.get(dim)
            if model is None:
                model = _MODELS[dim] = _read_wordllama(dim)
    return model


def _read_wordllama(dim: int) -> Any:
    """Load WordLlama from the installed wheel; never touch the network."""
    wordllama = _import_wordllama()
    package_dir = Path(wordllama.__file__).parent
    return wordllama.WordLlama.load(
        cache_dir=package_dir,
        disable_download=True,
        trunc_dim=None if dim == 256 else dim,
    )


class WordLlamaEmbeddings(BaseModel, Embeddings):
    """Static word embeddings from WordLlama (``l2_supercat``), local and offline.

    About 0.25 ms per query on one CPU core (``benchmarks/routing_speed.py``), which keeps
    routing overhead small.

    Example:
        .. code-block:: python

            from langchain_avengers import WordLlamaEmbeddings

            vector = WordLlamaEmbeddings().embed_query("What is 2 + 2?")
    """

    model_config = ConfigDict(frozen=True)

    dim: Literal[64, 128, 256] = 256
    """Embedding size; 64 and 128 truncate the shipped 256-d (Matryoshka) weights."""
    batch_size: int = Field(default=16, gt=0)
    """Texts embedded per call into WordLlama. Small batches are faster: WordLlama pads each
    batch to its longest text (4x less time and memory than 256 on long benchmark prompts)."""

    @property
    def identity(self) -> str:
        """Stable name of this embedder, stored in fitted routers."""
        return f"wordllama/l2_supercat-{self.dim}"

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a ``(n, dim)`` float32 array of unit (or zero) vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = _load_wordllama(self.dim)
        raw = model.embed(list(texts), norm=False, batch_size=self.batch_size)
        return normalize_rows(np.asarray(raw, dtype=np.float32))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (LangChain interface)."""
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (LangChain interface)."""
        return self.embed_array([text])[0].tolist()


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows; rows of zeros (e.g. an empty text) stay zero instead of NaN."""
    vectors = np.nan_to_num(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def embedder_identity(embedder: Embeddings) -> str:
    """A stable name for an embedder, so a router refuses vectors from a different one.

    Uses the embedder's ``identity`` attribute when it has one, else its class and model name
    (``model``, ``model_name`` or ``model_id``) and its output size (``dimensions``, ``size``
    or ``dim``) when set.
    """
    identity = getattr(embedder, "identity", None)
    if isinstance(identity, str):
        return identity
    cls = type(embedder)
    name = f"{cls.__module__}.{cls.__qualname__}"
    for attribute in ("model", "model_name", "model_id"):
        model = getattr(embedder, attribute, None)
        if isinstance(model, str):
            name = f"{name}:{model}"
            break
    for attribute in ("dimensions", "size", "dim"):
        dimensions = getattr(embedder, attribute, None)
        if isinstance(dimensions, int) and not isinstance(dimensions, bool):
            return f"{name}:{dimensions}"
    return name


def bounded_text(text: str) -> str:
    """The part of ``text`` that routing and fitting embed (:data:`MAX_EMBEDDED_CHARS`).

    A text of up to 8,192 characters is kept whole; a longer one becomes its first 4,096 and
    last 4,095 characters joined by a newline (8,192 in all).
    """
    if len(text) <= MAX_EMBEDDED_CHARS:
        return text
    head = MAX_EMBEDDED_CHARS // 2
    tail = MAX_EMBEDDED_CHARS - head - 1
    return f"{text[:head]}\n{text[-tail:]}"


def _text_key(identity: str, text: str) -> str:
    return hashlib.sha256(f"{identity}\0{text}".encode()).hexdigest()


class EmbeddingCache:
    """Remembers embeddings by (embedder identity, text), in memory and optionally on disk.

    Re-fitting and evaluating then never pay twice for the same text, which matters when the
    embedder is a paid API. The disk layer is one SQLite file, safe to interrupt.

    Args:
        path: SQLite file for a persistent cache; ``None`` keeps vectors in memory only.
        max_items: Most vectors kept in memory; the oldest are dropped first. A 256-d vector
            takes about 1.35 KB with its key, so the default 200,000 is at most ~270 MB.
    """

    def __init__(self, path: str | Path | None = None, *, max_items: int = 200_000) -> None:
        self.path = None if path is None else Path(path)
        self.max_items = _check_max_items(max_items)
        self._memory: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, v BLOB)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._memory)

    def clear(self) -> None:
        """Forget every vector held in memory (a disk cache's file is kept)."""
        with self._lock:
            self._memory.clear()

    def resize(self, max_items: int) -> None:
        """Keep at most ``max_items`` vectors in memory from now on (0: none); drops the oldest."""
        with self._lock:
            self.max_items = _check_max_items(max_items)
            self._trim()

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys``."""
        with self._lock:
            found = {k: self._memory[k] for k in keys if k in self._memory}
        missing = [k for k in keys if k not in found]
        if missing and self.path is not None:
            with self._connect() as db:
                for start in range(0, len(missing), 500):
                    chunk = missing[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(
                        f"SELECT key, v FROM vectors WHERE key IN ({marks})",  # noqa: S608
                        chunk,
                    )
                    for key, blob in rows:
                        found[key] = np.frombuffer(blob, dtype=np.float32)
            self._remember(found)
        return found

    def put(self, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors by key."""
        self._remember(vectors)
        if self.path is not None and vectors:
            with self._connect() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO vectors (key, v) VALUES (?, ?)",
                    [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()],
                )

    def _remember(self, vectors: dict[str, np.ndarray]) -> None:
        # own copies: a row view would keep its whole batch array alive after eviction
        owned = {k: np.array(v, dtype=np.float32) for k, v in vectors.items()}
        with self._lock:
            self._memory.update(owned)
            self._trim()

    def _trim(self) -> None:
        overflow = len(self._memory) - self.max_items
        for key in list(self._memory)[: max(overflow, 0)]:
            del self._memory[key]


def _check_max_items(max_items: int) -> int:
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
        msg = f"max_items must be an int >= 0, got {max_items!r}"
        raise ValueError(msg)
    return max_items


_PROCESS_CACHE = EmbeddingCache()


def process_cache() -> EmbeddingCache:
    """The in-memory cache ``embed_texts`` shares across the process (``cache="process"``).

    Fitting and evaluating fill it; routing does not use it. Size it with
    ``process_cache().resize(max_items)`` and empty it with ``process_cache().clear()``.
    """
    return _PROCESS_CACHE


def _embed_uncached(embedder: Embeddings, texts: list[str]) -> np.ndarray:
    embed_array = getattr(embedder, "embed_array", None)
    if callable(embed_array):
        return np.asarray(embed_array(texts), dtype=np.float32)
    return np.asarray(embedder.embed_documents(texts), dtype=np.float32)


def embed_texts(
    embedder: Embeddings,
    texts: Sequence[str],
    *,
    cache: EmbeddingCache | Literal["process"] | None = "process",
    show_progress: bool = False,
) -> np.ndarray:
    """Embed ``texts`` into L2-normalised float32 rows, reusing cached vectors.

    Each text is first cut to at most :data:`MAX_EMBEDDED_CHARS` characters
    (:func:`bounded_text`): fitting, evaluating and routing all embed through here.

    Args:
        embedder: Any LangChain embeddings.
        texts: Texts to embed.
        cache: Where to look up and store vectors; ``"process"`` is a cache shared by the
            whole process (:func:`process_cache`), ``None`` disables caching.
        show_progress: Show a progress bar (only drawn on a terminal).
    """
    store = process_cache() if cache == "process" else cache
    texts = [bounded_text(t) for t in texts]
    identity = embedder_identity(embedder)
    keys = [_text_key(identity, t) for t in texts]
    known = store.get(keys) if isinstance(store, EmbeddingCache) else {}
    todo = list(dict.fromkeys(k for k in keys if k not in known))
    text_of = dict(zip(keys, texts, strict=True))
    fresh: dict[str, np.ndarray] = {}
    with progress(len(todo), "embedding", enabled=show_progress) as bar:
        for start in range(0, len(todo), _PROGRESS_BATCH):
            chunk = todo[start : start + _PROGRESS_BATCH]
            vectors = normalize_rows(_embed_uncached(embedder, [text_of[k] for k in chunk]))
            fresh.update(zip(chunk, vectors, strict=True))
            bar.update(len(chunk))
    if isinstance(store, EmbeddingCache):
        store.put(fresh)
    known.update(fresh)
    if not keys:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([known[k] for k in keys]).astype(np.float32, copy=False)


def given_embeddings(embeddings: np.ndarray, n_queries: int) -> np.ndarray:
    """Precomputed calibration embeddings, checked against the queries and normalised."""
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != n_queries:
        msg = (
            f"embeddings: expected shape ({n_queries}, n_features) to match the "
            f"{n_queries} calibration queries, got {array.shape}"
        )
        raise ValueError(msg)
    return normalize_rows(array)


def query_vectors(
    embedder: Embeddings, queries: Sequence[Any] | np.ndarray, n_features: int, identity: str
) -> np.ndarray:
    """Unit-norm query vectors: texts embedded, or embeddings checked against the router's."""
    if len(queries) and all(isinstance(q, str) for q in queries):
        return embed_texts(embedder, list(queries), cache=None)
    vectors = np.asarray(queries, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    if vectors.ndim != 2 or vectors.shape[1] != n_features:
        msg = (
            f"query embedding: expected {n_features} features (embedder {identity!r}), "
            f"got shape {vectors.shape}"
        )
        raise ValueError(msg)
    return normalize_rows(vectors)


def has_own_method(embedder: Embeddings, method: str) -> bool:
    """Whether ``embedder`` has its own ``method`` rather than the base class's executor one."""
    return getattr(type(embedder), method, None) is not getattr(Embeddings, method)
