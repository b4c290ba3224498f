"""The Telegram poller's tests: a stand-in Bot API (AIPLANE_TELEGRAM_API_BASE points at it), a
stand-in OpenAI-compatible model behind the chains, and a stored chat chain that calls it."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.integration.chains.stand_ins import StandInLLM
from tests.integration.telegram.bot_api_standin import StandInBotApi

CHAT_CHAIN = {
    "description": "telegram chat",
    "tasks": [
        {
            "id": "chat",
            "handler": "model_execution",
            "execute_config": {"model": "stand-in"},
            "transition": {"branches": [{"operator": "default", "goto": "end"}]},
        }
    ],
}


@pytest.fixture
def runtime(admin_api_key):
    from functions.family_app import build_family_app

    with TestClient(
        build_family_app("runtime"), raise_server_exceptions=False, headers={"X-API-Key": admin_api_key}
    ) as client:
        yield client


@pytest.fixture
def bot_api(set_setting):
    server = StandInBotApi()
    set_setting("AIPLANE_TELEGRAM_API_BASE", server.url)
    yield server
    server.stop()


@pytest.fixture
def llm(set_setting):
    server = StandInLLM()
    server.reply = lambda text, body: f"echo: {text}"
    set_setting("AIPLANE_CHAINS_LLM_BASE_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def chat_chain(runtime):
    chain_id = f"telegram-chat-{uuid.uuid4().hex[:8]}"
    assert runtime.post("/taskchains", json={"id": chain_id, **CHAT_CHAIN}).status_code == 201
    return chain_id


@pytest.fixture
def frontend(runtime, bot_api, chat_chain):
    """A frontend whose bot the stand-in knows; yields (its DTO, its token)."""
    token = f"{uuid.uuid4().int % 10**9:09d}:{uuid.uuid4().hex}AAAA"
    bot_api.add_bot(token)
    created = runtime.post("/telegram-frontends", json={"botToken": token, "chatChain": chat_chain, "syncInterval": 1})
    assert created.status_code == 201, created.text
    yield created.json(), token
    runtime.delete(f"/telegram-frontends/{created.json()['id']}")
