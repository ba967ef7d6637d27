"""``langchain_avengers.testing``, as a user meets it: the context manager, the pytest fixture
(registered through the package's ``pytest11`` entry point) and ``python -m``.

The wire format itself is pinned by ``test_server_contract.py``; this module checks the public
face: names, the fixture's reset between tests, and the entry points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

import langchain_avengers.testing as testing
from langchain_avengers import AvengersChatModel
from langchain_avengers.testing import (
    OFFLINE_API_KEY,
    OFFLINE_MODELS,
    Faults,
    OfflineOpenRouter,
    offline_openrouter,
)

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[2]
QUESTION = "What is the capital of Australia?"
EXPECTED_ALL = [
    "OFFLINE_API_KEY",
    "OFFLINE_MODELS",
    "AnswerSpec",
    "Faults",
    "OfflineLangSmith",
    "OfflineOpenRouter",
    "load_answer_key",
    "offline_langsmith",
    "offline_openrouter",
]


def test_public_names_are_pinned() -> None:
    assert sorted(testing.__all__) == sorted(EXPECTED_ALL)
    for name in EXPECTED_ALL:
        assert getattr(testing, name) is not None


def test_the_documented_example_runs_and_the_server_stops_on_exit() -> None:
    with offline_openrouter() as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/api/v1"
        assert server.api_key == OFFLINE_API_KEY
        llm = AvengersChatModel(base_url=server.base_url, api_key=server.api_key, max_retries=0)
        first = llm.invoke(QUESTION)
        chosen = first.response_metadata["model_name"]
        assert "Australia" in first.text
        assert first.usage_metadata is not None
        assert first.usage_metadata["total_cost"] > 0
        server.faults.fail_models[chosen] = 429
        second = llm.invoke(QUESTION)
        assert second.response_metadata["model_name"] != chosen, "the router fell back"
        assert server.models_called()[:2] == [chosen, chosen]
        assert server.models_called()[2] == second.response_metadata["model_name"]
        url = server.base_url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/models", timeout=5)


def test_every_served_model_is_listed_and_faults_start_empty() -> None:
    with offline_openrouter(faults=Faults(models_status=503)) as server:
        with pytest.raises(urllib.error.HTTPError, match="503"):
            urllib.request.urlopen(f"{server.base_url}/models", timeout=5)
        server.reset()
        assert server.faults == Faults()
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as answer:
            listed = [entry["id"] for entry in json.load(answer)["data"]]
    assert listed == list(OFFLINE_MODELS)
    assert "google/gemini-2.5-flash" in OFFLINE_MODELS


def test_any_non_empty_key_passes_and_a_missing_one_is_a_401() -> None:
    with offline_openrouter() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="anything", max_retries=0)
        answer = client.chat.completions.create(
            model="google/gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content
        body = {"model": "google/gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
        keyless = urllib.request.Request(
            f"{server.base_url}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(keyless, timeout=5)


def test_the_fixture_is_the_session_server_reset(offline_openrouter: OfflineOpenRouter) -> None:
    """The repository's tests load the plugin too (``tests/conftest.py``)."""
    assert offline_openrouter.faults == Faults()
    assert offline_openrouter.models_called() == []
    assert offline_openrouter.answer_key == {}


@pytest.mark.slow
def test_python_m_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "langchain_avengers.testing", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("Offline OpenRouter at http://127.0.0.1:"), banner
        assert OFFLINE_API_KEY in banner
        base_url = banner.split()[3]
        with urllib.request.urlopen(f"{base_url}/models", timeout=10) as answer:
            assert len(json.load(answer)["data"]) == len(OFFLINE_MODELS)
    finally:
        process.terminate()
        process.wait(timeout=10)


USER_TESTS = """
from langchain_avengers import AvengersChatModel


def test_a_failing_model_is_routed_around(offline_openrouter):
    llm = AvengersChatModel(
        base_url=offline_openrouter.base_url, api_key=offline_openrouter.api_key, max_retries=0
    )
    chosen = llm.invoke("What is the capital of Australia?").response_metadata["model_name"]
    offline_openrouter.faults.fail_models[chosen] = 503
    answer = llm.invoke("What is the capital of Australia?")
    assert answer.response_metadata["model_name"] != chosen
    assert offline_openrouter.models_called()[:2] == [chosen, chosen]


def test_the_next_test_starts_clean(offline_openrouter):
    assert offline_openrouter.models_called() == []
    assert not offline_openrouter.faults.fail_models
"""


def install_entry_points(site: Path) -> None:
    """Make ``site`` hold what installing the package registers: the ``pytest11`` entry points
    of ``pyproject.toml`` (under a stand-in distribution, so this works whatever the venv has)."""
    assert tomllib is not None
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    plugins = project["entry-points"]["pytest11"]
    dist = site / "langchain_avengers_entry_points-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: langchain-avengers-entry-points\nVersion: 0\n"
    )
    lines = [f"{name} = {target}" for name, target in plugins.items()]
    (dist / "entry_points.txt").write_text("[pytest11]\n" + "\n".join(lines) + "\n")


@pytest.mark.skipif(tomllib is None, reason="reads pyproject.toml with tomllib (Python 3.11+)")
@pytest.mark.slow
def test_a_users_test_suite_gets_the_fixture_from_the_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_entry_points(site)
    project = tmp_path / "user_project"
    project.mkdir()
    (project / "test_my_chain.py").write_text(textwrap.dedent(USER_TESTS))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_chain.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
