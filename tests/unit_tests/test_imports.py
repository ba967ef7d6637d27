"""The public API: pin ``langchain_avengers.__all__`` (as LangChain partner packages do)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import langchain_avengers

EXPECTED_ALL = [
    "AvengersChatModel",
    "CalibrationData",
    "CalibrationRecord",
    "CandidateScore",
    "ClusterMatch",
    "ClusterRouter",
    "EmbeddingCache",
    "RecordsError",
    "RouterFileError",
    "RoutingDecision",
    "SpendPacer",
    "Usage",
    "WordLlamaEmbeddings",
    "__version__",
    "embed_texts",
    "load_default_router",
    "load_records",
]


def test_all_imports() -> None:
    assert sorted(langchain_avengers.__all__) == sorted(EXPECTED_ALL)


def test_every_public_name_is_importable() -> None:
    for name in EXPECTED_ALL:
        assert getattr(langchain_avengers, name) is not None


def test_errors_are_value_errors() -> None:
    assert issubclass(langchain_avengers.RecordsError, ValueError)
    assert issubclass(langchain_avengers.RouterFileError, ValueError)


def test_version_is_a_string() -> None:
    assert isinstance(langchain_avengers.__version__, str)
    assert langchain_avengers.__version__


HEAVY = ("sklearn", "scipy", "matplotlib", "wordllama", "threadpoolctl")
LEAN_SCRIPT = f"""
import json, sys
def loaded():
    return [m for m in {HEAVY!r} if m in sys.modules]
import langchain_avengers
from langchain_avengers import AvengersChatModel
llm = AvengersChatModel(api_key="x")
constructed = loaded()
llm.fitted_router.route("What is the capital of Peru?")
print(json.dumps({{"constructed": constructed, "routed": loaded()}}))
"""


@pytest.mark.slow
def test_import_and_construction_load_no_heavy_library() -> None:
    # a fresh process: this test process has long imported everything
    env = {k: v for k, v in os.environ.items() if k != "OPENROUTER_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-c", LEAN_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["constructed"] == []  # scikit-learn, threadpoolctl, scipy, ...: none
    assert report["routed"] == ["wordllama"]  # routing needs only the embedder


WITHOUT_TRAIN = """
import sys
sys.modules["sklearn"] = None  # as on a base install: `import sklearn` raises ImportError
from langchain_avengers.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _cli_without_scikit_learn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TRAIN, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_fit_and_evaluate_without_the_train_extra_name_the_install_line(tmp_path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text('{"query": "q", "records": {"a/b": 1}, "usages": {"a/b": {"cost": 0}}}\n')
    for command in (["fit", str(records), "-o", str(tmp_path / "r")], ["evaluate", str(records)]):
        result = _cli_without_scikit_learn(*command)
        assert result.returncode == 2, result.stderr
        assert 'pip install "langchain-avengers[train]"' in result.stderr
        assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_demo_and_route_need_no_extra() -> None:
    demo = _cli_without_scikit_learn("demo")
    assert demo.returncode == 0, demo.stderr
    route = _cli_without_scikit_learn("route", "default", "What is the capital of Peru?")
    assert route.returncode == 0, route.stderr


def test_an_unfitted_router_says_so_without_scikit_learn() -> None:
    script = (
        "import sys; sys.modules['sklearn'] = None\n"
        "from langchain_avengers import ClusterRouter\n"
        "try:\n    ClusterRouter().route('q')\n"
        "except (ValueError, AttributeError) as e:\n    print(type(e).__name__, e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "not fitted yet" in result.stdout
