"""Where calibration results live: the journal, the records file, merging shard outputs.

The journal (``RECORDS.jsonl.journal``) is append-only, one JSON line per finished
(query, model) pair. A line is written with one ``write`` call as soon as the pair is graded,
so a process killed at any moment (Ctrl-C, ``kill -9``) keeps every finished pair; a
background thread fsyncs the file as lines arrive (group commit, so a slow disk never stalls
the calls in flight). A torn last line (a power cut mid-write) is ignored and cut off before
the next append. A later line for the same pair supersedes an earlier one (``regrade``).

A pair answered but not graded (the judge's verdict had no "Score: N", the judge call or a
local grader failed) is journalled too, with no score, the failure (the verdict quoted) and
the answer, whatever ``--save-answers`` says: the answer was paid for, so the next run grades
it again (a judge call at most) instead of asking the model again. Such lines are format
version 2; graded lines stay version 1, so older versions of this tool read journals without
ungraded pairs as before and refuse the others by their version.

``RECORDS.jsonl`` is rebuilt from the journal and the query file and replaced atomically; it
is in the calibration-record format of :mod:`langchain_avengers.records.format`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_avengers._utils.files import write_lines_atomically
from langchain_avengers.calibration.queries import Query
from langchain_avengers.records.format import CalibrationRecord, load_records

try:  # advisory locks keep two runs from appending to one journal (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Journal",
    "JournalEntry",
    "JournalRef",
    "MergeResult",
    "StoreError",
    "journal_index",
    "journal_path",
    "latest_entries",
    "merge_records",
    "read_entry",
    "read_journal",
    "write_records",
]

JOURNAL_SUFFIX = ".journal"
JOURNAL_VERSION = 1
"""Format version of a graded pair's line."""
UNGRADED_VERSION = 2
"""Format version of an answered but ungraded pair's line (it has ``failure``)."""
READABLE_VERSIONS = (JOURNAL_VERSION, UNGRADED_VERSION)
PairKey = tuple[str, str]
"""(query key, model)."""


class StoreError(ValueError):
    """A journal or record file that cannot be used; the message says which and why."""


def journal_path(output: Path) -> Path:
    """The journal kept beside ``output``."""
    return output.with_name(output.name + JOURNAL_SUFFIX)


@dataclass(frozen=True)
class _Graded:
    """What a journalled pair was asked and graded on."""

    prompt_fp: str
    """:attr:`Query.prompt_fingerprint` when asked."""
    grading_fp: str
    """:attr:`Query.grading_fingerprint` when graded."""

    def is_current(self, query: Query) -> bool:
        """Whether the pair answers the query as it is now asked and graded."""
        return (
            self.prompt_fp == query.prompt_fingerprint
            and self.grading_fp == query.grading_fingerprint
        )


@dataclass(frozen=True)
class JournalEntry(_Graded):
    """One answered pair: the score (None if ungraded), its cost, what it was graded against."""

    key: str
    """Query key (:attr:`Query.key`)."""
    model: str
    """Model asked (the answering model id is in ``usage["answered_by"]``)."""
    score: float | None
    """None: answered but not graded (see ``failure``); the records file leaves it out."""
    usage: dict[str, Any]
    answer: str | None = None
    """The raw answer: kept with ``--save-answers`` (needed by ``regrade``), and always on an
    ungraded pair (needed to grade it without asking the model again)."""
    failure: str | None = None
    """Why an ungraded pair was not graded, e.g. the judge's verdict without a score, quoted
    on one line and cut short (:func:`~.graders.verdict_excerpt`)."""

    @property
    def graded(self) -> bool:
        """Whether the pair has a score."""
        return self.score is not None

    def is_done(self, query: Query) -> bool:
        """Graded, and as the query is now asked and graded: nothing to do for the pair."""
        return self.graded and self.is_current(query)

    def to_line(self) -> bytes:
        """The journal line, newline included (version 1, or 2 for an ungraded pair)."""
        version = JOURNAL_VERSION if self.failure is None else UNGRADED_VERSION
        data = {"v": version, **asdict(self)}
        for optional in ("answer", "failure"):
            if data[optional] is None:
                del data[optional]
        return (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


# ---------------------------------------------------------------------- writing


class Journal:
    """Append-only journal writer holding an exclusive lock on the file.

    Raises:
        StoreError: another process holds the journal (a second run on the same output).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._lock()
            self._cut_torn_tail()
        except BaseException:
            os.close(self._fd)
            raise
        self._dirty = threading.Event()
        self._closing = False
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-fsync", daemon=True)
        self._syncer.start()

    def _lock(self) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            msg = f"{self.path}: another run is writing this journal (same output file)"
            raise StoreError(msg) from None

    def _cut_torn_tail(self) -> None:
        size = os.fstat(self._fd).st_size
        if size == 0 or os.pread(self._fd, 1, size - 1) == b"\n":
            return
        start = max(0, size - (1 << 20))
        tail = os.pread(self._fd, size - start, start)
        cut = tail.rfind(b"\n")
        os.ftruncate(self._fd, start + cut + 1 if cut >= 0 else start)

    def append(self, entry: JournalEntry) -> None:
        """Write one finished pair (one ``write`` call: whole or, after a power cut, torn)."""
        os.write(self._fd, entry.to_line())
        self._dirty.set()

    def _sync_loop(self) -> None:
        while not self._closing:
            self._dirty.wait()
            self._dirty.clear()
            os.fsync(self._fd)

    def close(self) -> None:
        """Flush to disk, release the lock and close."""
        if self._fd < 0:
            return
        self._closing = True
        self._dirty.set()
        self._syncer.join()
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- reading


def _lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(byte offset, line number, raw line) of every complete line of a journal.

    A torn last line (no newline) is left out; a missing file has no lines.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        offset = 0
        for number, raw in enumerate(handle, start=1):
            if raw.endswith(b"\n"):
                yield offset, number, raw
            offset += len(raw)


def read_journal(path: Path, *, answers: bool = False) -> Iterator[JournalEntry]:
    """Entries in file order; a torn last line is ignored, any other bad line is an error.

    Args:
        path: The journal; a missing file has no entries.
        answers: Keep the saved answers (off: they are dropped as lines are read).
    """
    for _, number, raw in _lines(path):
        yield _parse_entry(raw, f"{path}:{number}", answers)


def _parse_entry(raw: bytes, where: str, answers: bool) -> JournalEntry:
    try:
        data = json.loads(raw)
        version = data.pop("v")
        if version not in READABLE_VERSIONS:
            known = " or ".join(map(str, READABLE_VERSIONS))
            msg = f"{where}: journal format version {version!r} is not {known}"
            raise StoreError(msg)
        if not answers:
            data.pop("answer", None)
        return JournalEntry(**data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        if isinstance(exc, StoreError):
            raise
        msg = f"{where}: damaged journal line ({type(exc).__name__}: {exc})"
        raise StoreError(msg) from None


def latest_entries(path: Path, *, answers: bool = False) -> dict[PairKey, JournalEntry]:
    """The last entry of every pair in the journal (whole entries: see :func:`journal_index`)."""
    return {(e.key, e.model): e for e in read_journal(path, answers=answers)}


@dataclass(frozen=True)
class JournalRef(_Graded):
    """Where a pair's last entry sits in the journal."""

    offset: int
    graded: bool = True
    """False: the pair was answered but not graded (its answer is in the entry)."""

    def is_done(self, query: Query) -> bool:
        """Graded, and as the query is now asked and graded: nothing to do for the pair."""
        return self.graded and self.is_current(query)


def read_entry(path: Path, ref: JournalRef) -> JournalEntry:
    """The whole entry (answer included) that ``ref`` points at."""
    with path.open("rb") as handle:
        handle.seek(ref.offset)
        return _parse_entry(handle.readline(), f"{path}@{ref.offset}", answers=True)


def journal_index(path: Path) -> dict[PairKey, JournalRef]:
    """The last entry of every pair, as a few bytes each (no usage, no answer).

    Resuming and rebuilding the records use this, so memory grows with the number of pairs
    by about a hundred bytes each, never with their answers.
    """
    index = {}
    for offset, number, raw in _lines(path):
        entry = _parse_entry(raw, f"{path}:{number}", answers=False)
        index[entry.key, entry.model] = JournalRef(
            entry.prompt_fp, entry.grading_fp, offset, entry.graded
        )
    return index


# ---------------------------------------------------------------------- records


def record_rows(
    queries: Sequence[Query], models: Sequence[str], journal: Path
) -> Iterator[dict[str, Any]]:
    """Calibration-record rows from the journal, in query order.

    Pairs asked or graded otherwise than the queries say now, or not graded, are left out,
    and so are queries with no pair at all.
    """
    index = journal_index(journal)
    if not index:
        return
    with journal.open("rb") as handle:
        for query in queries:
            records: dict[str, float] = {}
            usages: dict[str, dict[str, Any]] = {}
            for model in models:
                ref = index.get((query.key, model))
                if ref is None or not ref.is_done(query):
                    continue
                handle.seek(ref.offset)
                entry = _parse_entry(handle.readline(), f"{journal}@{ref.offset}", False)
                if entry.score is None:  # not after is_done; for the type checker
                    continue
                records[model] = entry.score
                usages[model] = entry.usage
            if records:
                yield {
                    "query": query.query,
                    "dataset": query.dataset,
                    "index": query.record_index,
                    "records": records,
                    "usages": usages,
                }


def write_records(
    output: Path, queries: Sequence[Query], models: Sequence[str], journal: Path
) -> tuple[int, int]:
    """Rebuild ``output`` atomically from the journal; returns (rows, pairs) written."""
    counts = [0, 0]

    def lines() -> Iterator[str]:
        for row in record_rows(queries, models, journal):
            counts[0] += 1
            counts[1] += len(row["records"])
            yield json.dumps(row, ensure_ascii=False)

    write_lines_atomically(output, lines())
    return counts[0], counts[1]


# ---------------------------------------------------------------------- merging


@dataclass
class MergeResult:
    """What ``merge_records`` wrote."""

    rows: int = 0
    pairs: int = 0
    duplicates: int = 0
    """Pairs found identical in more than one file (kept once)."""
    files: list[str] = field(default_factory=list)


def _row_key(dataset: str | None, index: str | int | None, query: str) -> tuple[Any, ...]:
    """A row's identity: ``(dataset, index)``, else ``(dataset, query)``.

    The index is compared as text: ``0`` in one file and ``"0"`` in another (a tool that
    wrote indexes as strings) are one query.
    """
    return ("id", dataset, str(index)) if index is not None else ("text", dataset, query)


def merge_records(
    paths: Sequence[Path], output: Path, *, queries: Sequence[Query] | None = None
) -> MergeResult:
    """Join calibration-record files (e.g. shard outputs) into one, without duplicates.

    Rows are the same query when their ``(dataset, index)`` match (their ``(dataset, query)``
    when there is no index). A (query, model) pair found in several files must be identical
    there and is kept once.

    Args:
        paths: Record files, each validated like ``avengers fit`` input.
        output: File to write (atomically).
        queries: Order rows as in this query file (the order an unsharded run writes);
            default first-seen order across ``paths``.

    Raises:
        StoreError: the same pair with different values in two files, one query key with
            two texts, or (with ``queries``) a row that is not in the query file.
        RecordsError: an input file that is not valid calibration records.
    """
    result = MergeResult(files=[str(p) for p in paths])
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    origin: dict[tuple[Any, ...], dict[str, str]] = {}
    for path in paths:
        for record in load_records(path):
            key = _row_key(record.dataset, record.index, record.query)
            row = rows.setdefault(key, _empty_row(record))
            seen = origin.setdefault(key, {"query": str(path)})
            if row["query"] != record.query:
                msg = (
                    f"{path}: query {key[1:]!r} reads {record.query[:60]!r} here but "
                    f"{row['query'][:60]!r} in {seen['query']}"
                )
                raise StoreError(msg)
            result.duplicates += _merge_pairs(row, seen, record, str(path))
    ordered = _ordered_keys(rows, queries, paths)
    result.rows = len(ordered)
    result.pairs = sum(len(rows[k]["records"]) for k in ordered)
    write_lines_atomically(output, (json.dumps(rows[k], ensure_ascii=False) for k in ordered))
    return result


def _empty_row(record: CalibrationRecord) -> dict[str, Any]:
    return {
        "query": record.query,
        "dataset": record.dataset,
        "index": record.index,
        "records": {},
        "usages": {},
    }


def _difference(
    new: tuple[Any, dict[str, Any] | None], old: tuple[Any, dict[str, Any] | None]
) -> str:
    """What differs between two versions of one pair: the score, or which usage fields."""
    if new[0] != old[0]:
        return f"score {new[0]} vs {old[0]}"
    a, b = new[1] or {}, old[1] or {}
    fields = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return "usage " + ", ".join(f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in fields[:3])


def _merge_pairs(
    row: dict[str, Any], seen: dict[str, str], record: CalibrationRecord, path: str
) -> int:
    duplicates = 0
    for model in record.scored_models():
        usage = record.usages.get(model)
        value = (record.records[model], usage.model_dump(exclude_unset=True) if usage else None)
        if model in row["records"]:
            known = (row["records"][model], row["usages"].get(model))
            if known != value:
                msg = (
                    f"{path}: model {model} on query {row['query'][:60]!r} differs from "
                    f"{seen[model]} ({_difference(value, known)}); "
                    "merge only outputs of one calibration"
                )
                raise StoreError(msg)
            duplicates += 1
            continue
        row["records"][model] = value[0]
        if value[1] is not None:
            row["usages"][model] = value[1]
        seen[model] = path
    return duplicates


def _ordered_keys(
    rows: Mapping[tuple[Any, ...], Any], queries: Sequence[Query] | None, paths: Sequence[Path]
) -> list[tuple[Any, ...]]:
    if queries is None:
        return list(rows)
    order = [_row_key(q.dataset, q.record_index, q.query) for q in queries]
    unknown = set(rows) - set(order)
    if unknown:
        first = next(k for k in rows if k in unknown)
        msg = f"merging {', '.join(map(str, paths))}: query {first[1:]!r} is not in the query file"
        raise StoreError(msg)
    return [k for k in order if k in rows]
