"""What the offline LangSmith keeps besides posted runs: projects, datasets, examples, feedback.

It answers the read API the real ``langsmith.Client`` calls, in the shapes the client parses:

- ``GET /sessions`` (``read_project`` by ``name``, ``list_projects``, by ``reference_dataset``),
  ``GET /sessions/<id>``, ``POST /sessions`` (``create_project``), ``PATCH /sessions/<id>``;
- ``GET /datasets`` (``read_dataset`` by ``name``), ``GET /datasets/<id>``;
- ``GET /examples`` (``list_examples`` by ``dataset``, ``id``; offset/limit pages);
- ``POST /feedback`` and multipart ``feedback.<id>`` parts (``create_feedback``),
  ``GET /feedback`` (``list_feedback`` by ``run`` and ``key``);
- ``POST /runs/query`` (``list_runs``): ``session``, ``run_type``, ``is_root``, ``start_time``,
  ``reference_example``, ``id``, and a ``filter`` of ``and``/``or`` over
  ``eq``/``neq``/``gt``/``gte``/``lt``/``lte`` on ``start_time``, ``run_type``, ``name`` and
  ``eq(metadata_key, "k")`` (the run's metadata has key ``k``). Anything else in a filter is
  refused with HTTP 400, so a test cannot pass on a filter the stand-in ignored.

Datasets and examples are seeded with :meth:`Store.add_dataset` (``server.store``).
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

TENANT = "00000000-0000-4000-8000-000000000001"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class BadRequestError(ValueError):
    """Answered with HTTP 400."""


@dataclass
class Store:
    """Projects, datasets, examples and feedback by id."""

    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    feedback: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_dataset(self, name: str, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """A dataset with ``examples`` (each ``{"inputs": ..., "outputs": ...}``)."""
        dataset = {"id": str(uuid.uuid4()), "name": name, "created_at": now(), "data_type": "kv"}
        self.datasets[dataset["id"]] = dataset
        for example in examples:
            row = {"id": str(uuid.uuid4()), "dataset_id": dataset["id"], "created_at": now()}
            self.examples[row["id"]] = {**row, **example}
        return dataset

    def session(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        """The project named ``name``, created (a run posted to it names it) if new."""
        for existing in self.sessions.values():
            if name is not None and existing["name"] == name:
                return existing
        session = {
            "id": str(fields.pop("id", None) or uuid.uuid4()),
            "name": name or f"project-{len(self.sessions)}",
            "tenant_id": TENANT,
            "start_time": now(),
            "reference_dataset_id": None,
            "extra": {},
            **fields,
        }
        self.sessions[session["id"]] = session
        return session

    # ------------------------------------------------------------------ requests

    def get(self, path: str, params: dict[str, list[str]]) -> Any:
        parts = path.strip("/").split("/")
        one = {k: v[0] for k, v in params.items()}
        if parts[0] == "sessions":
            if len(parts) == 2:
                return self._found(self.sessions, parts[1])
            rows = list(self.sessions.values())
            if "name" in one:
                rows = [s for s in rows if s["name"] == one["name"]]
            if "reference_dataset" in params:
                wanted = set(params["reference_dataset"])
                rows = [s for s in rows if s.get("reference_dataset_id") in wanted]
            return self._page(rows, one)
        if parts[0] == "datasets":
            if len(parts) == 2:
                return self._found(self.datasets, parts[1])
            rows = [d for d in self.datasets.values() if d["name"] == one.get("name", d["name"])]
            return self._page(rows, one)
        if parts[0] == "examples":
            rows = [e for e in self.examples.values() if e["dataset_id"] in params["dataset"]]
            if "id" in params:
                rows = [e for e in rows if e["id"] in set(params["id"])]
            return self._page(rows, one)
        if parts[0] == "feedback":
            rows = list(self.feedback.values())
            if "run" in params:
                rows = [f for f in rows if f["run_id"] in set(params["run"])]
            if "key" in params:
                rows = [f for f in rows if f["key"] in set(params["key"])]
            return self._page(rows, one)
        return {}

    def post(self, path: str, body: dict[str, Any]) -> Any:
        if path == "/sessions":
            fields = {k: v for k, v in body.items() if k != "name"}
            return self.session(body.get("name"), **fields)
        if path == "/feedback":
            return self.add_feedback(body)
        return {}

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        session = self.sessions.get(path.rsplit("/", 1)[-1])
        if session is None:
            raise KeyError(path)
        fields = {k: v for k, v in body.items() if v is not None}  # null: left as it is
        metadata = fields.pop("metadata", None)
        session.update(fields)
        if metadata:
            extra = session.setdefault("extra", {}) or {}
            extra["metadata"] = {**(extra.get("metadata") or {}), **metadata}
            session["extra"] = extra
        return session

    def add_feedback(self, body: dict[str, Any]) -> dict[str, Any]:
        row = {"created_at": now(), "modified_at": now(), **body}
        row["id"] = str(row.get("id") or uuid.uuid4())
        row["run_id"] = str(row["run_id"]) if row.get("run_id") else None
        row.setdefault("trace_id", row["run_id"])
        self.feedback[row["id"]] = row
        return row

    @staticmethod
    def _found(rows: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
        if key not in rows:
            raise KeyError(key)
        return rows[key]

    @staticmethod
    def _page(rows: list[dict[str, Any]], one: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(one.get("offset", 0))
        limit = int(one.get("limit", 100))
        return rows[offset : offset + limit]


def query_runs(
    runs: dict[str, dict[str, Any]], store: Store, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """The runs ``POST /runs/query`` selects (see the module docstring)."""
    matcher = parse_filter(body["filter"]) if body.get("filter") else (lambda run: True)
    sessions = set(body.get("session") or [])
    selected = []
    for run_id, run in runs.items():
        run = {**run, "id": run_id}
        run.setdefault("trace_id", run_id)
        run["session_id"] = run_session(run, store)
        if sessions and run["session_id"] not in sessions:
            continue
        if body.get("run_type") and run.get("run_type") != body["run_type"]:
            continue
        if body.get("is_root") is not None and (run.get("parent_run_id") is None) != bool(
            body["is_root"]
        ):
            continue
        if body.get("start_time") and run.get("start_time", "") < body["start_time"]:
            continue
        if body.get("reference_example") and str(run.get("reference_example_id")) not in set(
            map(str, body["reference_example"])
        ):
            continue
        if body.get("id") and run_id not in set(map(str, body["id"])):
            continue
        if matcher(run):
            selected.append(run)
    return selected


def run_session(run: dict[str, Any], store: Store) -> str:
    """The project id of a posted run (its ``session_id``, or the project its name names)."""
    if run.get("session_id"):
        return str(run["session_id"])
    return store.session(run.get("session_name") or "default")["id"]


_CALL = re.compile(r"\s*(\w+)\((.*)\)\s*$", re.DOTALL)
COMPARISONS = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
}
FIELDS = ("start_time", "run_type", "name")


def parse_filter(text: str) -> Any:
    """A predicate over runs for a LangSmith filter expression (the subset above)."""
    match = _CALL.match(text)
    if not match:
        msg = f"cannot parse filter {text!r}"
        raise BadRequestError(msg)
    op, inner = match.groups()
    args = split_arguments(inner)
    if op in ("and", "or"):
        parts = [parse_filter(a) for a in args]
        combine = all if op == "and" else any
        return lambda run: combine(p(run) for p in parts)
    if op in COMPARISONS and len(args) == 2:
        name, value = args[0].strip(), json.loads(args[1])
        if name == "metadata_key" and op == "eq":
            return lambda run: value in ((run.get("extra") or {}).get("metadata") or {})
        if name in FIELDS:
            compare = COMPARISONS[op]
            return lambda run: compare(run.get(name), value)
    msg = f"the stand-in does not support {op}({', '.join(args)})"
    raise BadRequestError(msg)


def split_arguments(text: str) -> list[str]:
    """Top-level comma-separated arguments (commas inside calls or strings stay)."""
    args, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and char == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    args.append(text[start:].strip())
    return [a for a in args if a]
