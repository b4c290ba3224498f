"""A buffered route that runs past its budget answers 504 in the family's envelope (before API
Gateway's own 29 s would); a streaming route gets the longer streaming budget."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from aiplane.api import app as app_module
from aiplane.api.app import create_family_app
from aiplane.settings import get_settings


@pytest.fixture()
def budgets(set_setting):
    set_setting("AIPLANE_REQUEST_BUDGET_S", "0.2")
    set_setting("AIPLANE_STREAM_BUDGET_S", "2")


def _app(family: str, path: str, seconds: float, method: str = "POST"):
    router = APIRouter()

    @router.api_route(path, methods=[method])  # a public route, so no credentials are needed
    async def slow() -> dict:
        await asyncio.sleep(seconds)
        return {"done": True}

    return TestClient(create_family_app(family, [router], groups=set()))


def test_a_buffered_route_past_its_budget_answers_504_in_the_envelope(budgets):
    response = _app("mlworker", "/health", 1.0, "GET").get("/health")
    assert response.status_code == 504
    body = response.json()
    assert set(body) == {"error", "code", "trace_id"} and "time budget" in body["error"]
    assert body["trace_id"] == response.headers["x-trace-id"]
    runtime = _app("runtime", "/login", 1.0).post("/login")
    assert runtime.status_code == 504 and set(runtime.json()["error"]) == {"code", "message", "param", "type"}


def test_a_route_within_its_budget_answers(budgets):
    assert _app("runtime", "/login", 0.0).post("/login").json() == {"done": True}


def test_a_streaming_route_gets_the_streaming_budget(budgets, monkeypatch):
    monkeypatch.setattr(app_module, "STREAMING_ROUTES", frozenset({("runtime", "POST", "/register")}))
    assert _app("runtime", "/register", 0.5).post("/register").json() == {"done": True}
    assert _app("runtime", "/login", 0.5).post("/login").status_code == 504


def test_llm_and_hook_timeouts_fit_a_buffered_route_with_room_to_fail_over():
    from aiplane.chains import hooks
    from aiplane.gateway import clients

    budget = get_settings().request_budget_s
    assert 2 * clients.READ_TIMEOUT_S + clients.CONNECT_TIMEOUT_S <= budget + clients.CONNECT_TIMEOUT_S
    assert hooks.DEFAULT_TIMEOUT_MS / 1000 < hooks.MAX_TIMEOUT_MS / 1000 <= budget
