"""Labelled queries to calibrate a pool on: the ``QUERIES.jsonl`` format.

One JSON object per line::

    {"query": "What is 17 * 23?", "reference": 391, "grader": "numeric",
     "dataset": "arithmetic", "index": 7}
    {"query": "Write f(n) returning n squared.",
     "grader": {"name": "python", "tests": ["assert f(3) == 9"]}}

Fields: ``query`` (the user message), ``reference`` (what a correct answer is, as its grader
reads it), ``grader`` (a name, or an object with ``name`` and the grader's options), optional
``system`` (a system message sent before the query), ``dataset`` and ``index``. Unknown fields
are errors: a typo must never silently change how answers are graded.

A query's identity is ``(dataset, index)`` when ``index`` is given, else a hash of its system
message and text; two lines with the same identity are an error naming both.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from langchain_avengers.records.format import json_objects

__all__ = [
    "ChoiceGrader",
    "ExactGrader",
    "GraderSpec",
    "JudgeGrader",
    "NumericGrader",
    "PythonGrader",
    "Query",
    "QueryFileError",
    "RegexGrader",
    "load_queries",
]

Scalar = StrictStr | StrictInt | StrictFloat
Reference = Scalar | list[Scalar] | None
REGEX_FLAGS = {"IGNORECASE": re.IGNORECASE, "MULTILINE": re.MULTILINE, "DOTALL": re.DOTALL}


class QueryFileError(ValueError):
    """An invalid query file; the message names the file, line and field."""


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExactGrader(_Options):
    """Normalised exact match against the reference (or any of a list of references)."""

    name: Literal["exact"]
    contains: bool = False
    """Also accept an answer that contains the normalised reference as whole words."""


class ChoiceGrader(_Options):
    """Multiple choice: the letter the answer finally chooses, against the reference letter."""

    name: Literal["choice"]
    choices: str = Field(default="ABCDEFGHIJ", pattern=r"^[A-Z]{2,26}$")
    """The option letters the question offers (upper case)."""


class NumericGrader(_Options):
    """The answer's final number against the reference number, within a tolerance."""

    name: Literal["numeric"]
    tolerance: float = Field(default=1e-6, ge=0, allow_inf_nan=False)
    """Absolute tolerance."""
    rel_tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    """Relative tolerance (a fraction of the reference's magnitude)."""


class RegexGrader(_Options):
    """``re.search`` of a pattern in the answer; ``reference`` is an example correct answer."""

    name: Literal["regex"]
    pattern: str = Field(min_length=1)
    """The regular expression (Python ``re`` syntax)."""
    flags: list[Literal["IGNORECASE", "MULTILINE", "DOTALL"]] = Field(default_factory=list)
    """``re`` flags by name."""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            msg = f"not a valid regular expression ({exc})"
            raise ValueError(msg) from None
        return pattern

    def compiled(self) -> re.Pattern[str]:
        """The pattern compiled with its flags."""
        flags = 0
        for name in self.flags:
            flags |= REGEX_FLAGS[name]
        return re.compile(self.pattern, flags)


class PythonGrader(_Options):
    """The answer's code run against ``tests`` (assert statements) in a sandboxed subprocess."""

    name: Literal["python"]
    tests: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    """Statements run one by one after the answer's code; each passes if it raises nothing."""
    timeout: float = Field(default=10.0, gt=0, le=600)
    """Wall-clock seconds for loading the code and running every test."""
    memory_mb: int = Field(default=512, ge=64, le=65536)
    """Address-space limit of the subprocess, MiB."""
    partial_credit: bool = False
    """Score the fraction of tests passed instead of 1 only when all pass."""

    @field_validator("tests")
    @classmethod
    def _compile(cls, tests: list[str]) -> list[str]:
        for number, test in enumerate(tests):
            try:
                compile(test, f"<test {number}>", "exec")
            except SyntaxError as exc:
                msg = f"test {number} is not valid Python ({exc.msg})"
                raise ValueError(msg) from None
        return tests


class JudgeGrader(_Options):
    """An LLM judge scores the answer against a rubric (and the reference, when given)."""

    name: Literal["judge"]
    rubric: str = Field(min_length=1)
    """What a good answer does; the judge scores 0-10 against it."""
    judge_model: str | None = None
    """Judge model for this query; default the run's ``judge_model`` (``--judge-model``)."""


GraderSpec = Annotated[
    ExactGrader | ChoiceGrader | NumericGrader | RegexGrader | PythonGrader | JudgeGrader,
    Field(discriminator="name"),
]
GRADER_OPTIONS: dict[str, type[_Options]] = {
    "exact": ExactGrader,
    "choice": ChoiceGrader,
    "numeric": NumericGrader,
    "regex": RegexGrader,
    "python": PythonGrader,
    "judge": JudgeGrader,
}
_REFERENCE_REQUIRED = {"exact", "choice", "numeric"}


class Query(BaseModel):
    """One labelled query: what to ask, and how to grade the answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(min_length=1)
    """The user message sent to every model."""
    reference: Reference = None
    """The correct answer as the grader reads it (a list: any of them is correct)."""
    grader: GraderSpec
    """How answers are scored; a bare name stands for the grader with default options."""
    system: str | None = None
    """A system message sent before the query."""
    dataset: str | None = None
    """Benchmark or kind of query (kept in the records; routers learn per dataset)."""
    index: str | int | None = None
    """Identifier inside ``dataset``; ``(dataset, index)`` must be unique."""

    _line: int = PrivateAttr(default=0)
    _source: str | None = PrivateAttr(default=None)

    @field_validator("grader", mode="before")
    @classmethod
    def _name_alone(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("index", mode="before")
    @classmethod
    def _no_bool_index(cls, value: object) -> object:
        if isinstance(value, bool):
            msg = "expected a string or an integer"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _reference_fits_grader(self) -> Query:
        name = self.grader.name
        if self.reference is None or self.reference == []:
            if name in _REFERENCE_REQUIRED:
                msg = f"the {name} grader needs a reference answer"
                raise ValueError(msg)
            return self
        if name == "numeric":
            for value in self.references():
                if parse_number(str(value)) is None:
                    msg = f"reference {value!r} is not a number"
                    raise ValueError(msg)
        if name == "choice":
            letters = self.grader.choices  # type: ignore[union-attr]
            for value in self.references():
                if not (isinstance(value, str) and value.strip().upper() in letters):
                    msg = f"reference {value!r} is not one of the letters {letters}"
                    raise ValueError(msg)
        return self

    def references(self) -> list[str | int | float]:
        """The reference as a list (empty when there is none)."""
        if self.reference is None:
            return []
        return list(self.reference) if isinstance(self.reference, list) else [self.reference]

    @property
    def line(self) -> int:
        """Line of the query file this query was read from (0 when built in code)."""
        return self._line

    @property
    def where(self) -> str:
        """``file:line`` of this query, for messages (``line N`` when built in code)."""
        return f"line {self._line}" if self._source is None else f"{self._source}:{self._line}"

    @property
    def key(self) -> str:
        """Identity of the query: ``(dataset, index)``, else a hash of system and text."""
        if self.index is not None:
            return "id:" + json.dumps([self.dataset, self.index], ensure_ascii=False)
        return "text:" + self.prompt_fingerprint

    @property
    def record_index(self) -> str | int:
        """``index`` for the calibration records: the given one, else ``q-`` + text hash."""
        return self.index if self.index is not None else "q-" + self.prompt_fingerprint[:12]

    @property
    def prompt_fingerprint(self) -> str:
        """Hash of what the models are asked (system message and query)."""
        return _digest([self.system, self.query])

    @property
    def grading_fingerprint(self) -> str:
        """Hash of how answers are scored (reference and grader options)."""
        return _digest([self.reference, self.grader.model_dump(mode="json")])

    def messages(self) -> list[dict[str, str]]:
        """The chat messages sent to each model."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": self.query}]


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


# ---------------------------------------------------------------------- numbers

_NUMBER_RE = re.compile(
    r"(?<![\w.])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\w)"
    r"|(?<![\w.])[-−]?\.\d+(?:[eE][-+]?\d+)?(?!\w)"
)


def parse_number(text: str) -> float | None:
    """A number written alone ("1,234.5", "-3", "2.5e-3", "45%" as 45); None otherwise."""
    cleaned = text.strip().rstrip("%").strip()
    match = _NUMBER_RE.fullmatch(cleaned)
    if match is None:
        return None
    return float(cleaned.replace(",", "").replace("−", "-"))


# ---------------------------------------------------------------------- loading


def load_queries(path: str | Path) -> list[Query]:
    """Read and validate a query file.

    Args:
        path: JSONL, one query per line; blank lines are skipped.

    Returns:
        The queries in file order.

    Raises:
        QueryFileError: unreadable file, bad JSON, an unknown or invalid field, a reference
            that does not fit its grader, or a duplicate query; the message names the file,
            the line and the field.
    """
    path = Path(path)
    queries: list[Query] = []
    first_seen: dict[str, int] = {}
    for number, raw in json_objects(path, QueryFileError, "the query file"):
        query = _validate_query(raw, f"{path}:{number}")
        query._line = number
        query._source = str(path)
        if query.key in first_seen:
            msg = f"{path}:{number}: duplicate query {_describe_key(query)}, first at line " + str(
                first_seen[query.key]
            )
            raise QueryFileError(msg)
        first_seen[query.key] = number
        queries.append(query)
    if not queries:
        msg = f"{path}: no queries (the file is empty)"
        raise QueryFileError(msg)
    return queries


def _describe_key(query: Query) -> str:
    if query.index is not None:
        return f"(dataset {query.dataset!r}, index {query.index!r})"
    return "(same system message and query text, no index)"


def _validate_query(raw: dict[str, Any], where: str) -> Query:
    try:
        return Query.model_validate(raw)
    except ValidationError as exc:
        msg = f"{where}: {_describe_error(exc)}"
        raise QueryFileError(msg) from None


def _describe_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = _field_path(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown field '{loc}' (expected one of: {_allowed_fields(error['loc'])})"
    if error["type"] == "missing":
        return f"field '{loc}' is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    got = error.get("input")
    shown = json.dumps(got)[:80] if isinstance(got, (str, int, float, bool)) else None
    suffix = f" (got {shown})" if shown is not None and error["type"] != "value_error" else ""
    if loc.startswith("reference") and error["type"] != "value_error":
        got_text = shown if shown is not None else type(got).__name__
        return f"field 'reference': expected a string, a number or a list of them (got {got_text})"
    return f"field '{loc or 'reference'}': {message[:1].lower()}{message[1:]}{suffix}"


def _field_path(loc: Sequence[int | str]) -> str:
    """``grader.numeric.tolerance`` -> ``grader.tolerance``: the tag is not a field."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] == "grader" and parts[1] in GRADER_OPTIONS:
        del parts[1]
    return ".".join(parts)


def _allowed_fields(loc: Sequence[int | str]) -> str:
    if len(loc) > 1 and loc[0] == "grader" and str(loc[1]) in GRADER_OPTIONS:
        return ", ".join(GRADER_OPTIONS[str(loc[1])].model_fields)
    return ", ".join(Query.model_fields)
