"""A stand-in OpenAI-compatible LLM for every chain test; the chain's LLM port points at it."""

from __future__ import annotations

import pytest

from tests.integration.chains.stand_ins import StandInLLM


@pytest.fixture(scope="session")
def stand_in_llm_server():
    server = StandInLLM()
    yield server
    server.stop()


@pytest.fixture
def llm(stand_in_llm_server, set_setting):
    set_setting("AIPLANE_CHAINS_LLM_BASE_URL", stand_in_llm_server.url)
    stand_in_llm_server.reply = lambda text, body: f"echo: {text}"
    stand_in_llm_server.failures_left = 0
    stand_in_llm_server.requests.clear()
    return stand_in_llm_server


@pytest.fixture
def runtime(family_clients, admin_api_key):
    """The runtime app as the bootstrap admin."""
    client = family_clients["runtime"]
    client.headers["X-API-Key"] = admin_api_key
    yield client
    del client.headers["X-API-Key"]  # the client is shared with the unauthenticated sweep
