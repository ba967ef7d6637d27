"""Who may import what: nothing outside ``tests/`` reaches into it, and the offline OpenRouter
(``langchain_avengers.testing``) sits on top of the package, stdlib-only.

The wheel does not ship ``tests/``: code in the package, the examples, benchmarks, scripts or
notebooks that imported a test helper would work in a checkout and break for every user.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
OUTSIDE_TESTS = ("langchain_avengers", "examples", "benchmarks", "scripts", "notebooks")
TESTING = REPO / "langchain_avengers" / "testing"
TESTS_ON_PATH = re.compile(r"""sys\.path\.(?:insert|append)\([^)]*["']tests["']""")


def helper_module_names() -> set[str]:
    """Names a test helper is imported by (``tests/`` is on pytest's ``pythonpath``)."""
    names = {path.stem for path in TESTS.glob("*.py")} | {"tests", "conftest"}
    names |= {path.name for path in TESTS.iterdir() if (path / "__init__.py").is_file()}
    return names


def python_sources(root: Path) -> Iterator[tuple[Path, str]]:
    """Every ``.py`` file under ``root`` and the code cells of its notebooks."""
    for path in sorted(root.rglob("*.py")):
        yield path, path.read_text(encoding="utf-8")
    for path in sorted(root.rglob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = [c["source"] for c in cells if c["cell_type"] == "code"]
        lines = ("".join(s) if isinstance(s, list) else s for s in code)
        yield path, "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def imported_modules(source: str) -> Iterator[str]:
    """Every absolute module an import statement of ``source`` names."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_nothing_outside_tests_imports_from_tests() -> None:
    helpers = helper_module_names()
    assert {"local_chat", "manual_clock", "conftest"} <= helpers  # the scan sees real names
    found = []
    for folder in OUTSIDE_TESTS:
        for path, source in python_sources(REPO / folder):
            where = path.relative_to(REPO)
            found += [
                f"{where}: imports {m}"
                for m in imported_modules(source)
                if m.split(".")[0] in helpers
            ]
            if TESTS_ON_PATH.search(source):
                found.append(f"{where}: puts tests/ on sys.path")
    assert not found, "the wheel ships no tests/:\n" + "\n".join(found)


def test_the_package_never_imports_its_testing_helpers() -> None:
    found = [
        str(path.relative_to(REPO))
        for path, source in python_sources(REPO / "langchain_avengers")
        if TESTING not in path.parents
        and any(m.startswith("langchain_avengers.testing") for m in imported_modules(source))
    ]
    assert not found, f"only tests and users import langchain_avengers.testing: {found}"


def test_the_offline_server_is_stdlib_only() -> None:
    """It must run on the base install and never drag in the router (or pytest)."""
    found = []
    for path, source in python_sources(TESTING):
        allowed = {"pytest"} if path.name == "pytest_plugin.py" else set()
        for module in imported_modules(source):
            top = module.split(".")[0]
            own = module.startswith("langchain_avengers.testing")
            if not own and top not in sys.stdlib_module_names and top not in allowed:
                found.append(f"{path.relative_to(REPO)}: imports {module}")
    assert not found, "\n".join(found)
