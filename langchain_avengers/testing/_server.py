"""The offline OpenRouter: an OpenRouter-compatible HTTP server on a loopback port.

OpenRouter speaks the OpenAI Chat Completions wire format; this stdlib-only server speaks it too:
``POST /api/v1/chat/completions`` (plain JSON and SSE streaming, tool calls, JSON modes, usage
with ``cost``, the 404 "No endpoints found that support image input" for media a model does not
accept) and ``GET /api/v1/models``. Answers come from a small rule-based "brain"
(``_replies``) and are a pure function of the request body, so recorded cassettes replay byte
for byte. :class:`OfflineOpenRouter` is the handle tests hold: its URL, its :class:`Faults` and
what it was asked.

The server is split by concept; this module holds the HTTP layer, the shared state and the entry
points:

* ``_models``: the model table (ids, list prices, modalities), ``GET /models``;
* ``_faults``: :class:`Faults` (failure injection), errors, validation;
* ``_messages``: the text of messages, token estimates;
* ``_arguments``: tool-call and JSON arguments made up for a schema;
* ``_replies``: what the assistant answers (and ``_answer_key`` for calibration queries);
* ``_payloads``: completion bodies, stream chunks and usage.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, cast

from langchain_avengers.testing._answer_key import AnswerSpec, load_answer_key
from langchain_avengers.testing._faults import (
    BROKEN_200_BODIES,
    FAILURE_REASONS,
    ApiError,
    Faults,
    answer_faults,
    stream_events,
    validate_chat_request,
)
from langchain_avengers.testing._models import JsonDict, models_payload
from langchain_avengers.testing._payloads import completion_payload, stream_chunks
from langchain_avengers.testing._replies import calibration_reply, plan_reply, request_digest
from langchain_avengers.testing._serving import serving

HOST = "127.0.0.1"
API_PREFIXES = ("/api/v1", "/v1")
OFFLINE_API_KEY = "sk-or-v1-offline-openrouter-test-key"
"""The key to give clients of the offline server: a public placeholder, not a secret.

The server accepts any non-empty bearer key (a missing one is a 401, as on OpenRouter); this
fixed one exists so examples and tests need no environment variable.
"""

# --------------------------------------------------------------------------- state


@dataclass
class OfflineOpenRouter:
    """A running offline OpenRouter: its URL, its faults and the requests it got.

    Handler threads and the test share it, so every list is guarded by a lock; read
    :meth:`models_called` rather than :attr:`requests` while calls are in flight.

    Attributes:
        faults: What goes wrong, per model; mutate it between calls.
        answer_key: Query text -> its right and wrong answers: chat requests for a query in it
            are answered with per-model skill (see :func:`load_answer_key`), as calibration
            runs need.
        skill: Model -> query kind -> probability of a right answer, over the defaults.
        requests: Every parsed chat-request body, in arrival order.
        model_list_auth: The ``Authorization`` header of every ``GET /models`` (None when
            absent).
        peak_in_flight: Most chat requests handled at once: per model, and over all models
            under ``"*"``.
        port: The loopback port it listens on.
        verbose: Log every request to stderr.
    """

    __test__: ClassVar[bool] = False  # not a pytest test class

    faults: Faults = field(default_factory=Faults)
    answer_key: dict[str, AnswerSpec] = field(default_factory=dict)
    skill: dict[str, dict[str, float]] = field(default_factory=dict)
    requests: list[JsonDict] = field(default_factory=list)
    model_list_auth: list[str | None] = field(default_factory=list)
    peak_in_flight: dict[str, int] = field(default_factory=dict)
    port: int = 0
    verbose: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _in_flight: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def base_url(self) -> str:
        """The ``base_url`` for OpenAI-style clients: ``http://127.0.0.1:PORT/api/v1``."""
        return f"http://{HOST}:{self.port}/api/v1"

    @property
    def api_key(self) -> str:
        """A fixed placeholder key (:data:`OFFLINE_API_KEY`); any non-empty key works."""
        return OFFLINE_API_KEY

    def models_called(self) -> list[str]:
        """The ``model`` of every chat request received, in arrival order."""
        with self._lock:
            return [str(body.get("model")) for body in self.requests]

    def reset(self) -> None:
        """Forget what was asked and go back to no faults, no answer key, default skill."""
        with self._lock:
            self.requests.clear()
            self.model_list_auth.clear()
            self.peak_in_flight.clear()
        self.faults = Faults()
        self.answer_key = {}
        self.skill = {}

    def record(self, body: JsonDict) -> None:
        """Keep a parsed request body (handler threads call this concurrently)."""
        with self._lock:
            self.requests.append(body)
            self._in_flight[threading.get_ident()] = model = str(body.get("model"))
            busy = list(self._in_flight.values())
            for name, count in ((model, busy.count(model)), ("*", len(busy))):
                self.peak_in_flight[name] = max(self.peak_in_flight.get(name, 0), count)

    def release(self) -> None:
        """The calling handler thread has answered its recorded request."""
        with self._lock:
            self._in_flight.pop(threading.get_ident(), None)

    def record_model_list(self, authorization: str | None) -> None:
        """Note one ``GET /models`` and the ``Authorization`` header it came with."""
        with self._lock:
            self.model_list_auth.append(authorization)

    def take_failure(self, model_id: str) -> ApiError | None:
        """The next ``fail_next`` failure of ``model_id``, if any (consumed)."""
        with self._lock:
            pending = self.faults.fail_next.get(model_id)
            if not pending:
                return None
            status = pending.pop(0)
        retry_after = self.faults.retry_after
        headers = {"retry-after": retry_after} if retry_after else None
        reason = FAILURE_REASONS.get(status, "Injected failure")
        return ApiError(status, f"{reason} (model {model_id})", headers)


# --------------------------------------------------------------------------- HTTP layer


class OpenRouterHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server bound to 127.0.0.1 that shares one :class:`OfflineOpenRouter`."""

    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once are queued, not dropped

    def __init__(self, port: int, state: OfflineOpenRouter):
        super().__init__((HOST, port), OpenRouterHandler)
        self.state = state
        state.port = self.server_address[1]


class OpenRouterHandler(BaseHTTPRequestHandler):
    """Routes requests; HTTP/1.1 so streams use chunked transfer encoding."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # answer at once instead of waiting on delayed ACKs
    server_version = "offline-openrouter/1.0"
    timeout = 30.0  # idle keep-alive connections end instead of pinning a thread

    @property
    def state(self) -> OfflineOpenRouter:
        """The shared server state."""
        return cast(OpenRouterHTTPServer, self.server).state

    def log_message(self, format: str, *args: Any) -> None:
        """Log only when verbose (tests stay quiet)."""
        if self.state.verbose:
            super().log_message(format, *args)

    def route(self) -> str:
        """Path below ``/api/v1`` or ``/v1``; "" for anything else."""
        path = self.path.split("?", 1)[0].rstrip("/")
        for prefix in API_PREFIXES:
            if path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return ""

    def do_GET(self) -> None:
        """``GET /models`` (public, like OpenRouter's)."""
        if self.route() == "/models":
            self.state.record_model_list(self.headers.get("Authorization"))
            faults = self.state.faults
            status = faults.models_status
            faulty = faults.models_body is not None or faults.models_drip_s
            if status is None and (faulty or faults.models_padding_bytes):
                self.send_model_list_fault(faults)
            elif status is None:
                self.send_json(200, models_payload(faults.no_tool_models))
            else:
                self.send_api_error(ApiError(status, FAILURE_REASONS.get(status, "Error")))
        else:
            self.send_api_error(ApiError(404, "Not Found"))

    def do_POST(self) -> None:
        """``POST /chat/completions``; a client hanging up mid-answer is not an error."""
        try:
            self.handle_chat()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.state.release()

    def handle_chat(self) -> None:
        """Record, delay, authenticate, validate, then answer or stream."""
        body = self.read_json()
        if isinstance(body, dict):
            self.state.record(body)
        state = self.state
        faults = state.faults
        delay = faults.delay_s
        if isinstance(body, dict):
            delay += faults.model_delay_s.get(str(body.get("model")), 0.0)
        if delay > 0:
            time.sleep(delay)
        try:
            if self.route() != "/chat/completions":
                raise ApiError(404, "Not Found")
            self.check_auth()
            request, model = validate_chat_request(body, faults)
            failure = self.state.take_failure(model.id)
            if failure is not None:
                raise failure
            digest = request_digest(request)
            reply = calibration_reply(
                request, model, state.answer_key, state.skill, faults.judge_verdict
            ) or plan_reply(request, model, digest)
        except ApiError as err:
            if faults.echo_key:
                err.message += f" (key: {self.headers.get('Authorization', '').partition(' ')[2]})"
            self.send_api_error(err)
            return
        if model.id in faults.http200_bodies:
            content_type, data = BROKEN_200_BODIES[faults.http200_bodies[model.id]]
            self.send_raw(200, content_type, data)
        elif request.get("stream"):
            abort = model.id in faults.stream_fail_after_first_chunk
            chunks = [
                answer_faults(c, model.id, faults)
                for c in stream_chunks(request, model, reply, digest)
            ]
            self.send_stream(
                stream_events(chunks, model.id, faults), abort_after=2 if abort else None
            )
        elif model.id in faults.error_body_models:
            code = faults.error_body_models[model.id]
            self.send_json(
                200, ApiError(code, FAILURE_REASONS.get(code, "Provider returned error")).payload()
            )
        else:
            payload = answer_faults(
                completion_payload(request, model, reply, digest), model.id, faults
            )
            if model.id in faults.empty_choices_models:
                payload["choices"] = []
            self.send_json(200, payload)

    def read_json(self) -> object:
        """The request body parsed as JSON, or None if it is not JSON."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def check_auth(self) -> None:
        """Any non-empty bearer key passes; a missing or empty one is a 401."""
        scheme, _, key = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "No auth credentials found")

    def send_json(
        self, status: int, payload: JsonDict, headers: dict[str, str] | None = None
    ) -> None:
        """A complete JSON response with Content-Length (keeps the connection reusable)."""
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_raw(self, status: int, content_type: str, data: bytes) -> None:
        """A complete response with any body (a broken answer)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_model_list_fault(self, config: Faults) -> None:
        """``GET /models`` answered with a raw, padded or dripping body."""
        if config.models_body is not None:
            body = config.models_body
        else:
            body = json.dumps(models_payload(config.no_tool_models)).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) + config.models_padding_bytes))
        self.end_headers()
        try:
            if config.models_drip_s:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(config.models_drip_s)
                return
            self.wfile.write(body)
            block = b" " * (1 << 20)
            left = config.models_padding_bytes
            while left > 0:
                self.wfile.write(block[:left])
                left -= len(block)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_api_error(self, err: ApiError) -> None:
        """An OpenRouter-style error response."""
        self.send_json(err.status, err.payload(), err.headers)

    def send_stream(self, events: list[bytes], abort_after: int | None) -> None:
        """SSE over chunked encoding.

        With ``abort_after`` the connection drops without the final zero-length chunk, which
        HTTP clients report as a broken body.
        """
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.write_chunk(b": OPENROUTER PROCESSING\n\n")
        for index, event in enumerate(events):
            if index == abort_after:
                self.close_connection = True
                return
            self.write_chunk(b"data: " + event + b"\n\n")
        self.write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def write_chunk(self, data: bytes) -> None:
        """One HTTP/1.1 chunk, flushed so the client sees it immediately."""
        self.wfile.write(f"{len(data):X}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()


# --------------------------------------------------------------------------- entry points


@contextmanager
def offline_openrouter(
    port: int = 0, *, faults: Faults | None = None, verbose: bool = False
) -> Iterator[OfflineOpenRouter]:
    """Run an offline OpenRouter on a loopback port for the ``with`` block.

    The server answers from a daemon thread of this process and stops when the block ends.

    Args:
        port: The port on 127.0.0.1; 0 picks a free one (read it from ``server.port``).
        faults: Faults to start with (default: none).
        verbose: Log every request to stderr.

    Yields:
        The server's handle: ``base_url``, ``api_key``, ``faults``, ``models_called()``...

    Raises:
        OSError: When ``port`` is taken.
    """
    state = OfflineOpenRouter(faults=faults or Faults(), verbose=verbose)
    httpd = OpenRouterHTTPServer(port, state)
    with serving(httpd, name=f"offline-openrouter:{state.port}"):
        yield state


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground until Ctrl-C (``python -m langchain_avengers.testing``).

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(
        prog="python -m langchain_avengers.testing",
        description="An offline OpenRouter-compatible server on 127.0.0.1, for tests and demos.",
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    parser.add_argument(
        "--answer-key",
        type=Path,
        help="a query file of `avengers calibrate`: answer its queries with per-model skill",
    )
    args = parser.parse_args(argv)
    state = OfflineOpenRouter(verbose=not args.quiet)
    if args.answer_key:
        state.answer_key = load_answer_key(args.answer_key)
    httpd = OpenRouterHTTPServer(args.port, state)
    print(  # noqa: T201 - the command's one line of output
        f"Offline OpenRouter at {state.base_url} (API key: any, e.g. {OFFLINE_API_KEY}); "
        "Ctrl-C to stop",
        flush=True,
    )
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
