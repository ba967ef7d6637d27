"""Calibration records: per-query scores and costs of a pool of models.

One JSON object per line::

    {"query": "...", "dataset": "mbpp", "index": "val-0",
     "records": {"model-a": 1.0, "model-b": false},
     "usages": {"model-a": {"cost": 0.0012, "prompt_tokens": 80}}}

A record logged from production traffic (``avengers harvest traces``) has one measured model
and the probability with which the deployed router chose it, its propensity, in (0, 1]::

    {"query": "...", "index": "<run id>", "records": {"model-b": 1.0},
     "usages": {"model-b": {"cost": 0.0004}}, "propensities": {"model-b": 0.025}}

Such a logged record saw only what the router (and its exploration) chose; fitting weighs it
by the inverse of its propensity and off-policy evaluation needs the propensity (see
:mod:`langchain_avengers.evaluation.off_policy`). A propensity is only allowed for a model
with a score on that record.

A model that is absent from ``records`` (or ``null``) was not measured on that query: it is
never counted as a zero score (the router estimates it from the models measured on that query,
see :class:`~langchain_avengers.ClusterRouter`). Likewise a missing cost is "unknown",
never "free". Aligned into arrays for fitting
and evaluating by :class:`~langchain_avengers.records.data.CalibrationData`.
"""

from __future__ import annotations

import difflib
import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from langchain_avengers._utils.warnings import user_stacklevel

__all__ = [
    "CalibrationRecord",
    "RecordsError",
    "RecordsWarning",
    "Usage",
    "load_records",
    "read_jsonl_lines",
]

Score = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
"""A JSON number in [0, 1]; strings such as "0.5" are refused (bools are mapped first)."""
Propensity = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False, strict=True)]
"""The probability, in (0, 1], with which the logging router chose the model."""


class RecordsError(ValueError):
    """Invalid calibration data; the message names the file, line and field."""


class RecordsWarning(UserWarning):
    """Calibration data that loads, but perhaps not as meant (say, a misspelt field)."""


class Usage(BaseModel):
    """What one model's answer to one query cost.

    Other fields (``latency_s``, ``model``, ``judge_cost``, the ``billed_cost`` and
    ``priced_from`` written by ``avengers reprice``...) are kept as they are.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    cost: float | None = Field(default=None, ge=0.0, allow_inf_nan=False, strict=True)
    """USD billed for the answer; ``None`` means unknown (not free)."""
    prompt_tokens: int | None = Field(default=None, ge=0)
    """Input tokens, when the provider reported them."""
    completion_tokens: int | None = Field(default=None, ge=0)
    """Output tokens, when the provider reported them. OpenRouter's count already includes
    the reasoning tokens, so pricing uses this count alone."""
    reasoning_tokens: int | None = Field(default=None, ge=0)
    """Reasoning tokens among ``completion_tokens`` (informational, never priced twice)."""

    def token_counts(self) -> tuple[int, int] | None:
        """``(prompt_tokens, completion_tokens)`` when both are known, else ``None``."""
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens, self.completion_tokens


class CalibrationRecord(BaseModel):
    """One labelled query: how well, and at what cost, each model answered it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    query: str = Field(min_length=1)
    """The user query the models answered."""
    records: dict[str, Score | None]
    """Model id to score in [0, 1] (bools allowed); ``None`` or absent means not measured."""
    usages: dict[str, Usage | None] = Field(default_factory=dict)
    """Model id to usage; a model without a cost here has an unknown cost on this query."""
    dataset: str | None = None
    """Benchmark the query comes from, used for per-benchmark tables and stratified splits."""
    index: str | int | None = None
    """Identifier of the query inside its dataset; (dataset, index) must be unique."""
    propensities: dict[str, Propensity] = Field(default_factory=dict)
    """Logged records only: model id to the probability, in (0, 1], with which the deployed
    router chose that model for this query (each key needs a score in ``records``). Empty for
    a calibration record, whose models were all asked."""
    _location: str | None = PrivateAttr(default=None)

    @property
    def location(self) -> str | None:
        """``file:line`` the record was read from; ``None`` for a record built in memory."""
        return self._location

    @field_validator("query")
    @classmethod
    def _query_has_text(cls, value: str) -> str:
        if not value.strip():
            msg = "must hold text, not only whitespace"
            raise ValueError(msg)
        return value

    @field_validator("records", mode="before")
    @classmethod
    def _bools_are_scores(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: float(v) if isinstance(v, bool) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _propensities_are_of_scored_models(self) -> CalibrationRecord:
        unscored = [m for m in self.propensities if self.records.get(m) is None]
        if unscored:
            msg = (
                f"propensities: model(s) {unscored} have a propensity but no score in "
                "'records'; a propensity belongs to the model that answered"
            )
            raise ValueError(msg)
        return self

    @property
    def logged(self) -> bool:
        """Whether this record was logged from a router's choices (it has propensities)."""
        return bool(self.propensities)

    def scored_models(self) -> list[str]:
        """Models with a measured score on this query."""
        return [m for m, s in self.records.items() if s is not None]

    def cost_of(self, model: str) -> float | None:
        """USD cost of ``model`` on this query, or ``None`` if unknown."""
        usage = self.usages.get(model)
        return None if usage is None else usage.cost


def _format_location(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc) or "<row>"


def _describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = _format_location(first["loc"])
    got = first.get("input")
    got_text = json.dumps(got)[:80] if _is_json_scalar(got) else type(got).__name__
    return f"field '{where}': {first['msg'].lower()} (got {got_text})"


def _is_json_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _read_json_object(text: str, where: str, error: type[ValueError]) -> dict[str, Any]:
    """The JSON object on one line, or ``error`` naming ``where`` and what is wrong with it."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{where}: not valid JSON ({exc.msg} at column {exc.colno})"
        raise error(msg) from None
    except RecursionError:
        msg = f"{where}: JSON nested too deeply to read (a line is at most a few levels deep)"
        raise error(msg) from None
    except ValueError as exc:  # an integer longer than Python converts (4300 digits by default)
        msg = f"{where}: a number on this line is too long to read ({str(exc).split(';')[0]})"
        raise error(msg) from None
    if not isinstance(raw, dict):
        msg = f"{where}: expected a JSON object, got {type(raw).__name__}"
        raise error(msg)
    return raw


def json_objects(
    path: Path, error: type[ValueError], what: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each non-blank line's JSON object with its line number; ``error`` names file and line.

    One reader for records and query files, so both split lines alike and refuse bad JSON,
    deep nesting and over-long numbers with the same one-line errors.
    """
    try:
        lines = read_jsonl_lines(path)
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read {what} ({exc})"
        raise error(msg) from None
    for number, text in enumerate(lines, start=1):
        if text.strip():
            yield number, _read_json_object(text, f"{path}:{number}", error)


def _validate_record(raw: dict[str, Any], where: str) -> tuple[CalibrationRecord, list[str]]:
    """The record a line holds, and the top-level fields it has that a record does not know."""
    try:
        record = CalibrationRecord.model_validate(raw)
    except ValidationError as exc:
        msg = f"{where}: {_describe_validation_error(exc)}"
        raise RecordsError(msg) from None
    return record, [key for key in raw if key not in CalibrationRecord.model_fields]


def _describe_unknown_field(name: str) -> str:
    known = list(CalibrationRecord.model_fields)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {name!r}{hint}; a record's fields are {', '.join(known)}"


def _warn_unknown_fields(first_seen: dict[str, str], lines: dict[str, int]) -> None:
    for name, where in first_seen.items():
        count = lines[name]
        times = f"on {count} lines, the first" if count > 1 else "on this line"
        warnings.warn(
            f"{where}: {_describe_unknown_field(name)}; ignored ({times})",
            RecordsWarning,
            stacklevel=user_stacklevel(),
        )


def _check_unique_keys(keyed: Iterable[tuple[tuple[str | None, str | int], str]]) -> None:
    first_seen: dict[tuple[str | None, str | int], str] = {}
    for key, where in keyed:
        if key in first_seen:
            msg = (
                f"{where}: duplicate (dataset, index) = ({key[0]!r}, {key[1]!r}), "
                f"first seen at {first_seen[key]}"
            )
            raise RecordsError(msg)
        first_seen[key] = where


def read_jsonl_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 JSONL file, split at line ends only.

    ``str.splitlines()`` also splits at U+2028, U+2029 and U+0085, which JSON strings may hold
    unescaped. Windows and old Mac line ends are read as line ends too.
    """
    return Path(path).read_text(encoding="utf-8").split("\n")


def load_records(path: str | Path, *, strict: bool = False) -> list[CalibrationRecord]:
    """Read and validate a calibration JSONL file.

    Top-level fields other than a record's (``query``, ``records``, ``usages``, ``dataset``,
    ``index``, ``propensities``) are ignored with a :class:`RecordsWarning` per field, naming
    the first line it is on and the nearest known field (a misspelt ``"usage"`` would drop
    every cost of its line); fields inside a usage (``latency_s``, ...) are kept as they are.

    Args:
        path: JSONL file, one calibration record per line; blank lines are skipped.
        strict: Refuse unknown top-level fields instead of warning.

    Returns:
        The records, in file order.

    Raises:
        RecordsError: malformed JSON, a field out of range, an empty file, no model with any
            score, a duplicate (dataset, index) key, or (``strict``) an unknown field; the
            message names file, line and field.
    """
    path = Path(path)
    records: list[CalibrationRecord] = []
    keyed: list[tuple[tuple[str | None, str | int], str]] = []
    unknown_first_seen: dict[str, str] = {}
    unknown_lines: dict[str, int] = {}
    for number, raw in json_objects(path, RecordsError, "calibration records"):
        where = f"{path}:{number}"
        record, unknown = _validate_record(raw, where)
        if unknown and strict:
            msg = f"{where}: {_describe_unknown_field(unknown[0])} (strict)"
            raise RecordsError(msg)
        for name in unknown:
            unknown_first_seen.setdefault(name, where)
            unknown_lines[name] = unknown_lines.get(name, 0) + 1
        record._location = where
        records.append(record)
        if record.index is not None:
            keyed.append(((record.dataset, record.index), where))
    if not records:
        msg = f"{path}: no calibration records (the file is empty)"
        raise RecordsError(msg)
    _check_unique_keys(keyed)
    if not any(record.scored_models() for record in records):
        msg = f"{path}: no model has any score (every 'records' object is empty or null)"
        raise RecordsError(msg)
    _warn_unknown_fields(unknown_first_seen, unknown_lines)
    return records
