"""A real ``redis-server`` for the shared-state tests: started on a free port, stopped after.

``.ci/run`` installs Debian's ``redis-server`` and sets ``AVENGERS_REQUIRE_REDIS=1``, so there
a missing binary fails the tests instead of skipping them. ``AVENGERS_REDIS_URL`` (also set by
``.ci/run``, to a server it started) is used by the tests that only need some server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REQUIRE_ENV = "AVENGERS_REQUIRE_REDIS"
URL_ENV = "AVENGERS_REDIS_URL"
START_TIMEOUT_S = 10.0


def redis_binary() -> str:
    """The ``redis-server`` path; skips the test without one (fails it in CI)."""
    path = shutil.which("redis-server")
    if path is None:
        reason = (
            "no redis-server binary on PATH (apt-get install -y redis-server); the shared-state "
            "tests need a real Redis server"
        )
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires them to run")
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process (no persistence) on 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = f"redis-server exited with {self.process.returncode} on port {self.port}"
                raise RuntimeError(msg)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        msg = f"redis-server did not answer PING within {START_TIMEOUT_S}s"
        raise RuntimeError(msg)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
