"""The ``offline_openrouter`` pytest fixture, registered through the ``pytest11`` entry point.

Installing ``langchain-avengers`` makes it available to every test suite::

    def test_my_chain(offline_openrouter):
        llm = AvengersChatModel(
            base_url=offline_openrouter.base_url, api_key=offline_openrouter.api_key
        )
        assert llm.invoke("hi").content
        assert offline_openrouter.models_called()

One server runs per test session (started on first use); each test gets it reset: no faults,
no answer key, no requests recorded. With pytest-socket's ``--disable-socket``, allow loopback
(``--allow-hosts=127.0.0.1``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_avengers.testing._server import OfflineOpenRouter, offline_openrouter


@pytest.fixture(scope="session")
def offline_openrouter_session() -> Iterator[OfflineOpenRouter]:
    """The session's offline OpenRouter, shared by every test that asks for it.

    Prefer ``offline_openrouter``, which also resets it for each test.
    """
    with offline_openrouter() as server:
        yield server


@pytest.fixture(name="offline_openrouter")
def offline_openrouter_fixture(
    offline_openrouter_session: OfflineOpenRouter,
) -> Iterator[OfflineOpenRouter]:
    """An offline OpenRouter for this test: no faults and nothing recorded at the start.

    Yields:
        The server's handle: ``base_url``, ``api_key``, ``faults``, ``models_called()``...
    """
    offline_openrouter_session.reset()
    yield offline_openrouter_session
    offline_openrouter_session.reset()
