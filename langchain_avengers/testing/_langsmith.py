"""An offline LangSmith: run ingestion, and the reads and writes of learning from LangSmith.

The real ``langsmith.Client`` (pointed at ``base_url`` with any API key) sends runs here as to a
LangSmith: ``POST /runs/multipart`` bodies, each part a JSON document named
``post.<run id>[.<field>]`` or ``patch.<run id>[.<field>]``; plain JSON (``POST /runs``,
``POST /runs/batch``, ``PATCH /runs/<id>``) is accepted too. Given a ``decompress`` function
(``zstandard``'s, in this repository's tests), ``GET /info`` says zstd compression is enabled,
so the client compresses its multipart bodies as for a current LangSmith; without one (the
package stays stdlib-only) it sends them plain. ``runs()`` rebuilds every run from its post
and patches.
Projects, datasets, examples, feedback and ``POST /runs/query`` are answered from
``state.store`` (:mod:`._langsmith_store`)::

    import langsmith
    from langchain_avengers.testing import offline_langsmith

    with offline_langsmith() as server:
        client = langsmith.Client(api_url=server.base_url, api_key="offline")
        # ... trace, create feedback, harvest; client.flush() before reading server.runs()
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, cast
from urllib.parse import parse_qs

from langchain_avengers.testing._langsmith_store import BadRequestError, Store, query_runs
from langchain_avengers.testing._serving import serving

HOST = "127.0.0.1"
INFO = {
    "version": "0.11.0",
    "instance_flags": {"zstd_compression_enabled": False},
    "batch_ingest_config": {
        "use_multipart_endpoint": True,
        "scale_up_qsize_trigger": 1000,
        "scale_up_nthreads_limit": 16,
        "scale_down_nempty_trigger": 4,
        "size_limit": 100,
        "size_limit_bytes": 20_971_520,
    },
}
"""What ``GET /info`` answers: the settings a LangSmith server announces to its clients
(zstd compression is announced when the server can decompress it)."""
STORE_POSTS = ("/runs/query", "/sessions", "/feedback")
"""POST paths answered from the store rather than ingested as runs."""


@dataclass
class Received:
    """One request as it arrived: path, headers, raw body and decoded body."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    decoded: bytes


@dataclass
class LangSmithStandIn:
    """Everything the stand-in received, and the runs rebuilt from it."""

    __test__: ClassVar[bool] = False

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    operations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """``(op, run id, fields)`` in arrival order; op is ``post``, ``patch`` or ``feedback``."""
    store: Store = field(default_factory=Store)
    decompress: Callable[[bytes], bytes] | None = field(default=None, repr=False)
    """Decodes ``Content-Encoding: zstd`` bodies; when given, ``/info`` announces zstd."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def base_url(self) -> str:
        """The ``api_url`` for ``langsmith.Client``."""
        return f"http://{HOST}:{self.port}"

    def received(
        self, request: Received, operations: list[tuple[str, str, dict[str, Any]]]
    ) -> None:
        """Record a request and the run operations it carried (handler threads call this)."""
        with self._lock:
            self.requests.append(request)
            for op, item_id, fields in operations:
                if op == "feedback":
                    self.store.add_feedback({**fields, "id": item_id})
                    continue
                if op == "post" and not fields.get("session_id"):
                    self.store.session(fields.get("session_name") or "default")
                self.operations.append((op, item_id, fields))

    def runs(self) -> dict[str, dict[str, Any]]:
        """Every run by id: its post, then each patch laid over it."""
        runs: dict[str, dict[str, Any]] = {}
        with self._lock:
            for _, run_id, fields in self.operations:
                runs.setdefault(run_id, {}).update(fields)
        return runs

    def query(self, method: str, path: str, params: dict[str, list[str]], body: Any) -> Any:
        """Answer a read or write of the stand-in's store (not a run ingestion)."""
        if path == "/runs/query":
            rows = query_runs(self.runs(), self.store, body)
            limit = int(body.get("limit") or len(rows) or 1)
            return {"runs": rows[:limit], "cursors": {"next": None}}
        with self._lock:
            if method == "GET":
                return self.store.get(path, params)
            if method == "POST":
                return self.store.post(path, body)
            return self.store.patch(path, body)

    def posted_bytes(self) -> bytes:
        """Every request body as received and as decoded, for secret scans."""
        with self._lock:
            return b"\n".join(r.raw + b"\n" + r.decoded for r in self.requests)


def run_operations(path: str, content_type: str, body: bytes) -> list[tuple[str, str, dict]]:
    """The run operations in one ingestion request."""
    if path == "/runs/multipart":
        return multipart_operations(content_type, body)
    if path == "/runs/batch":
        batch = json.loads(body)
        return [(op, run["id"], run) for op in ("post", "patch") for run in batch.get(op) or []]
    if path == "/runs":
        run = json.loads(body)
        return [("post", run["id"], run)]
    if path.startswith("/runs/"):
        return [("patch", path.rsplit("/", 1)[-1], json.loads(body))]
    return []


def multipart_operations(content_type: str, body: bytes) -> list[tuple[str, str, dict]]:
    """Parts named ``<op>.<run id>`` (the run) or ``<op>.<run id>.<field>`` (one field)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    operations = []
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        op, _, rest = name.partition(".")
        run_id, _, field_name = rest.partition(".")
        if op not in ("post", "patch", "feedback"):
            continue  # attachments
        value = json.loads(cast(bytes, part.get_payload(decode=True)))
        operations.append((op, run_id, {field_name: value} if field_name else value))
    return operations


class StandInHandler(BaseHTTPRequestHandler):
    """Answers ``/info`` and records every ingestion request."""

    protocol_version = "HTTP/1.1"
    server_version = "langsmith-stand-in/1.0"

    @property
    def state(self) -> LangSmithStandIn:
        return cast(StandInServer, self.server).state

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path.rstrip("/") == "/info":
            zstd = self.state.decompress is not None
            self.reply({**INFO, "instance_flags": {"zstd_compression_enabled": zstd}})
            return
        self.answer("GET", path.rstrip("/"), parse_qs(query), None)

    def do_POST(self) -> None:
        if self.path.split("?")[0].rstrip("/") in STORE_POSTS:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.answer("POST", self.path.split("?")[0].rstrip("/"), {}, body)
            return
        self.ingest("POST")

    def do_PATCH(self) -> None:
        if self.path.startswith("/sessions/"):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.answer("PATCH", self.path.split("?")[0], {}, body)
            return
        self.ingest("PATCH")

    def answer(self, method: str, path: str, params: dict[str, list[str]], body: Any) -> None:
        try:
            self.reply(self.state.query(method, path, params, body))
        except KeyError as exc:
            self.reply({"detail": f"not found: {exc}"}, status=404)
        except BadRequestError as exc:
            self.reply({"detail": str(exc)}, status=400)

    def ingest(self, method: str) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        decoded = raw
        if self.headers.get("Content-Encoding") == "zstd":
            if self.state.decompress is None:
                self.reply({"detail": "zstd bodies are not accepted here"}, status=415)
                return
            decoded = self.state.decompress(raw)
        path = self.path.split("?")[0].rstrip("/")
        operations = run_operations(path, self.headers.get("Content-Type", ""), decoded)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.state.received(Received(method, path, headers, raw, decoded), operations)
        self.reply({})

    def reply(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class StandInServer(ThreadingHTTPServer):
    """Threaded server on 127.0.0.1 sharing one :class:`LangSmithStandIn`."""

    daemon_threads = True

    def __init__(self, state: LangSmithStandIn) -> None:
        super().__init__((HOST, 0), StandInHandler)
        self.state = state
        state.port = self.server_address[1]


@contextmanager
def offline_langsmith(
    decompress: Callable[[bytes], bytes] | None = None,
) -> Iterator[LangSmithStandIn]:
    """Run an offline LangSmith on a free loopback port for the ``with`` block.

    Args:
        decompress: Decodes zstd request bodies (say
            ``zstandard.ZstdDecompressor().decompressobj().decompress``); when given, the
            server announces zstd and clients compress as for a current LangSmith.
    """
    state = LangSmithStandIn(decompress=decompress)
    httpd = StandInServer(state)
    with serving(httpd):
        yield state
