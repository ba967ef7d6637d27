"""The public API: pin ``langchain_avengers.__all__`` (as LangChain partner packages do)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
