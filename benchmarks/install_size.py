"""Install size and cold start of the base install and of each extra, beside langchain-openai.

For each variant a fresh virtualenv gets ``pip install`` of it (from the package registry, the
package itself from this checkout); then, in the same run:

- size: the virtualenv on disk, pip's own files excluded, as ``du -sk`` counts it (allocated
  blocks, the convention of the figures in issue 14: langchain-openai alone about 119 MiB), and
  the files' own bytes beside it (``du -sb``);
- ``import``: wall time of ``import langchain_avengers`` (``import langchain_openai`` for the
  reference), in a fresh process, median of 5;
- first call: wall time of a fresh process that imports, builds the chat model and makes one
  routed call (``AvengersChatModel().invoke``; ``ChatOpenAI().invoke`` for the reference)
  against the repository's local OpenRouter-compatible server, median of 5;
- ``avengers demo`` on the base install (the README's main command) must exit 0.

    python benchmarks/install_size.py [--keep DIR] > benchmarks/install_size.md

Needs the package registry (pip) and a few minutes; the target of issue 14 is a base install
at most 2.4x the size of langchain-openai's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 2.4
RUNS = 5
VARIANTS = {
    "langchain-openai alone": ["langchain-openai"],
    "langchain-avengers (base)": [str(REPO)],
    "langchain-avengers[train]": [f"{REPO}[train]"],
    "langchain-avengers[plot]": [f"{REPO}[plot]"],
    "langchain-avengers[agents]": [f"{REPO}[agents]"],
}
QUERY = "What is the capital of Australia?"
CALL = {
    "langchain-openai alone": (
        "from langchain_openai import ChatOpenAI\n"
        "ChatOpenAI(model='google/gemini-2.5-flash', base_url=URL, api_key='k').invoke(Q)\n"
    ),
    "avengers": (
        "from langchain_avengers import AvengersChatModel\n"
        "AvengersChatModel(base_url=URL, api_key='k').invoke(Q)\n"
    ),
}


def venv_size(venv: Path) -> tuple[int, int]:
    """Disk usage (allocated 512-byte blocks, as ``du``) and file bytes of ``venv``, pip's
    own files excluded."""
    blocks = size = 0
    for root, dirs, files in os.walk(venv):
        dirs[:] = [d for d in dirs if not (d == "pip" or d.startswith("pip-"))]
        for name in files:
            info = (Path(root) / name).lstat()
            blocks += info.st_blocks * 512
            size += info.st_size
    return blocks, size


def make_venv(path: Path, requirements: list[str]) -> Path:
    """A fresh virtualenv at ``path`` with ``requirements`` installed; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
        check=True,
    )
    return python


def wall_time(python: Path, code: str, env: dict[str, str]) -> float:
    """Median wall time of a fresh process running ``code``."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        done = subprocess.run(
            [str(python), "-c", code], env=env, capture_output=True, text=True, cwd=python.parent
        )
        if done.returncode != 0:
            msg = f"{python}: {code!r} failed:\n{done.stderr}"
            raise SystemExit(msg)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """The offline OpenRouter (``langchain_avengers.testing``), in a thread; its base URL."""
    from langchain_avengers.testing import offline_openrouter

    with offline_openrouter() as server:
        yield server.base_url


def measure(name: str, requirements: list[str], work: Path, url: str) -> dict[str, object]:
    python = make_venv(work / name.replace(" ", "_").replace("[", "-").strip("]"), requirements)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPENROUTER_API_KEY")}
    env["NO_PROXY"] = "127.0.0.1"
    reference = name == "langchain-openai alone"
    module = "langchain_openai" if reference else "langchain_avengers"
    call = CALL["langchain-openai alone" if reference else "avengers"]
    disk, size = venv_size(python.parents[1])
    row: dict[str, object] = {
        "name": name,
        "size": disk,
        "bytes": size,
        "import": wall_time(python, f"import {module}", env),
        "call": wall_time(python, f"URL={url!r}\nQ={QUERY!r}\n{call}", env),
    }
    if name == "langchain-avengers (base)":
        demo = subprocess.run(
            [str(python.parent / "avengers"), "demo"], env=env, capture_output=True, text=True
        )
        row["demo"] = demo.returncode
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="build the virtualenvs here and keep them")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        work = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(local_server())
        rows = [measure(name, reqs, work, url) for name, reqs in VARIANTS.items()]
    reference = rows[0]["size"]
    assert isinstance(reference, int)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; median of {RUNS} runs.\n")
    print(
        "| install | on disk (du, pip excluded) | vs langchain-openai | file bytes | "
        "import | first call |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        size = row["size"]
        assert isinstance(size, int)
        print(
            f"| {row['name']} | {size / 2**20:,.0f} MiB | {size / reference:.2f}x | "
            f"{int(row['bytes']) / 2**20:,.0f} MiB | {row['import']:.2f} s | {row['call']:.2f} s |"
        )
    base = rows[1]
    ratio = int(base["size"]) / reference  # type: ignore[call-overload]
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(
        f"\nBase install: {ratio:.2f}x langchain-openai's "
        f"(target: at most {TARGET_RATIO}x, {verdict})."
    )
    print(f"`avengers demo` on the base install: exit status {base['demo']}.")


if __name__ == "__main__":
    main()
