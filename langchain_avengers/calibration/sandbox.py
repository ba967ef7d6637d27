"""Run an answer's Python code against assert tests in a sandboxed subprocess.

The code runs in ``python -I`` (isolated: no user site, no ``PYTHON*`` variables) in a fresh
temporary directory, with an environment that holds no secrets, under:

* a wall-clock timeout (the process is killed) and a CPU-time limit (``RLIMIT_CPU``);
* an address-space limit (``RLIMIT_AS``), a file-size limit (``RLIMIT_FSIZE``), no core dumps;
* an audit hook (``sys.addaudithook``; code cannot remove it) installed before the answer runs,
  which refuses network use (any socket but a local socketpair, DNS lookups), starting
  processes (``subprocess``, ``os.system``, ``os.exec*``, ``os.fork``, ``os.posix_spawn``),
  signalling other processes, ``ctypes``, raising resource limits, and writing, renaming or
  deleting files outside the temporary directory.

This keeps a mistaken answer from harming the machine or reaching the network. It is not a
security boundary against code written to escape it: grade untrusted models' code inside a
container or VM as well.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SandboxError", "SandboxResult", "run_python_tests"]

FILE_LIMIT_BYTES = 16 * 1024 * 1024
"""Largest file the code may write (and the most output it can produce)."""
RESULT_LIMIT_BYTES = 64 * 1024

_HARNESS = r"""
import json, os, resource, sys


def _main():
    payload = json.loads(sys.stdin.readline())
    nonce = payload.pop("nonce")
    memory, cpu, size = payload["memory_bytes"], payload["cpu_seconds"], payload["file_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.dont_write_bytecode = True
    import socket, subprocess  # importable by answers; using them is refused below

    subprocess._fork_exec = None
    sys.modules["_posixsubprocess"] = None
    root = os.path.realpath(os.getcwd())
    refused = {
        "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
        "os.forkpty", "os.kill", "os.killpg", "signal.pthread_kill", "resource.setrlimit",
        "resource.prlimit", "sys.remote_exec",
    }
    writes = {
        "os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.symlink",
        "os.link", "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile",
        "shutil.copytree", "shutil.chown", "os.chflags", "os.lchflags", "os.mkfifo", "os.mknod",
    }
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def inside(path):
        if not isinstance(path, (str, bytes, os.PathLike)):
            return True
        real = os.path.realpath(os.fsdecode(path))
        return real == root or real.startswith(root + os.sep)

    def hook(event, args):
        if event in refused or event.startswith("ctypes."):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event.startswith("socket."):
            if event == "socket.__new__" and args[1] == socket.AF_UNIX:
                return
            raise PermissionError(f"sandbox: network access ({event}) is not allowed")
        if event == "open" and args[0] is not None:
            mode, flags = args[1] or "", args[2] or 0
            if (any(c in mode for c in "wax+") or flags & write_flags) and not inside(args[0]):
                raise PermissionError(f"sandbox: writing {args[0]!r} is not allowed")
        elif event in writes and not all(inside(a) for a in args):
            raise PermissionError(f"sandbox: {event} outside the sandbox is not allowed")

    out = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    sys.addaudithook(hook)
    os.write(out, (nonce + "ready\n").encode())
    namespace = {"__name__": "__answer__", "__builtins__": __builtins__}
    report = {"passed": 0, "error": None}
    try:
        exec(compile(payload["code"], "answer.py", "exec"), namespace)
    except BaseException as exc:
        report["error"] = "the code failed to load: " + f"{type(exc).__name__}: {exc}"[:300]
    else:
        for number, test in enumerate(payload["tests"]):
            try:
                exec(compile(test, f"test_{number}", "exec"), namespace)
            except BaseException as exc:
                if report["error"] is None:
                    report["error"] = f"test {number}: " + f"{type(exc).__name__}: {exc}"[:300]
            else:
                report["passed"] += 1
    os.write(out, (nonce + json.dumps(report) + "\n").encode())
    os._exit(0)


_main()
"""


class SandboxError(RuntimeError):
    """The sandbox itself failed before the answer's code ran (not the answer's fault)."""


@dataclass(frozen=True)
class SandboxResult:
    """How the answer's code fared: tests passed out of ``total``, and the first error."""

    passed: int
    total: int
    error: str | None = None


def run_python_tests(
    code: str, tests: Sequence[str], *, timeout: float = 10.0, memory_mb: int = 512
) -> SandboxResult:
    """Run ``code`` then each test statement in a sandboxed ``python -I`` subprocess.

    Args:
        code: The answer's code (module level: definitions, imports...).
        tests: Statements (typically ``assert ...``) run one by one after ``code``; a test
            passes if it raises nothing.
        timeout: Wall-clock seconds for the whole run; on expiry nothing passes.
        memory_mb: Address-space limit of the subprocess, MiB.

    Returns:
        Passed and total test counts (0 passed when the code fails to load, times out or
        crashes) and the first error.

    Raises:
        SandboxError: not a POSIX system, or the sandbox failed before running the code
            (a machine problem, never scored as a wrong answer).
    """
    if os.name != "posix":
        msg = "the python grader's sandbox needs a POSIX system (resource limits)"
        raise SandboxError(msg)
    nonce = secrets.token_hex(16)
    payload = {
        "nonce": nonce,
        "code": code,
        "tests": list(tests),
        "memory_bytes": memory_mb * 1024 * 1024,
        "cpu_seconds": math.ceil(timeout) + 1,
        "file_bytes": FILE_LIMIT_BYTES,
    }
    with (
        tempfile.TemporaryDirectory(prefix="avengers-sandbox-") as workdir,
        tempfile.TemporaryFile() as output,
        tempfile.TemporaryFile() as errors,
    ):
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
        timed_out = False
        try:
            subprocess.run(  # noqa: S603 - our own interpreter and harness, no shell
                [sys.executable, "-I", "-c", _HARNESS],
                input=(json.dumps(payload) + "\n").encode(),
                stdout=output,
                stderr=errors,
                cwd=workdir,
                env=env,
                timeout=timeout,
                start_new_session=True,
                check=False,
            )
        except subprocess.TimeoutExpired:
            timed_out = True
        output.seek(0)
        lines = output.read(RESULT_LIMIT_BYTES).decode("utf-8", errors="replace").splitlines()
        if nonce + "ready" not in lines:
            errors.seek(0)
            tail = " ".join(errors.read()[-400:].decode("utf-8", errors="replace").split())
            why = f"timed out after {timeout:g} s" if timed_out else "ended"
            msg = f"the sandbox {why} before running the code ({tail or 'no message'})"
            raise SandboxError(msg)
    if timed_out:
        return SandboxResult(0, len(tests), f"timed out after {timeout:g} s")
    for line in lines:
        if line.startswith(nonce) and line != nonce + "ready":
            report = json.loads(line[len(nonce) :])
            return SandboxResult(int(report["passed"]), len(tests), report["error"])
    return SandboxResult(0, len(tests), "the process ended without a result (crash or limit)")
