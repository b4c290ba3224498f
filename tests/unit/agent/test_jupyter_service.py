"""The Jupyter component starts a real Jupyter server (jupyter-server) with the service's token on loopback,
reports running only once Jupyter's own /api/status answers, stops it on stopping, and reports why it failed."""

from __future__ import annotations

import socket

import httpx
import pytest
from aiplane_agent.services import jupyter
from aiplane_agent.services.jupyter import JupyterServices

from tests.unit.agent.services_harness import AgentUnderTest, ScriptedApi, wait_for

SERVICES = "/mlworker/v1/jupyter/workers/worker-test/services"
TOKEN = "service-token-0123456789"


def state_path(service_id: str) -> str:
    return f"/mlworker/v1/jupyter/services/{service_id}/state"


def service(service_id: str, status: str = "starting") -> dict:
    return {
        "id": service_id,
        "name": "notebook",
        "status": status,
        "token": TOKEN,
        "created_at": "2026-12-01T00:00:00Z",
        "image": "jupyter/pytorch:latest",
    }


@pytest.fixture
def api():
    return ScriptedApi()


@pytest.fixture
def agent(tmp_path, api):
    agent = AgentUnderTest(tmp_path, api, service_slots=1)
    yield agent
    agent.close()


@pytest.fixture
def services(agent):
    component = JupyterServices(agent.ctx)
    yield component
    component.stop()


def test_a_starting_service_runs_a_real_jupyter_server_with_its_token_until_stopped(agent, api, services):
    api.answers[SERVICES] = {"services": [service("nb-1")]}
    services.tick(agent.ctx)
    (running,) = wait_for(lambda: api.reports(state_path("nb-1")), timeout_s=120)
    assert running["status"] == "running" and running["worker_id"] == "worker-test"
    url = running["url"]
    assert url.startswith("http://127.0.0.1:")
    status = httpx.get(f"{url}api/status", headers={"Authorization": f"token {TOKEN}"})
    assert status.status_code == 200 and "started" in status.json()  # Jupyter's own answer
    assert httpx.get(f"{url}api/status").status_code == 403  # the token guards it
    assert httpx.get(f"{url}api/status", headers={"Authorization": "token guessed"}).status_code == 403

    api.answers[SERVICES] = {"services": [service("nb-1", "running")]}
    services.tick(agent.ctx)  # running and alive: nothing to do
    assert len(api.reports(state_path("nb-1"))) == 1 and services.running_work() == 1
    assert services.plugin_health() == {"jupyter": {"status": "healthy"}}  # what the heartbeat carries

    api.answers[SERVICES] = {"services": [service("nb-1", "stopping")]}  # DELETE /v1/jupyter/services/nb-1
    services.tick(agent.ctx)
    assert api.reports(state_path("nb-1"))[-1] == {"worker_id": "worker-test", "status": "stopped"}
    assert services.running_work() == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}api/status", headers={"Authorization": f"token {TOKEN}"})


def test_a_server_that_cannot_start_is_reported_as_error_with_the_reason(agent, api, services, monkeypatch):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:  # the port it picks is in use: Jupyter refuses to start (no retries on another port)
        monkeypatch.setattr(jupyter, "free_port", lambda host: taken.getsockname()[1])
        api.answers[SERVICES] = {"services": [service("nb-2")]}
        services.tick(agent.ctx)
        (report,) = wait_for(lambda: api.reports(state_path("nb-2")), timeout_s=120)
    finally:
        taken.close()
    assert report["status"] == "error" and "exited with status" in report["error"]
    assert "url" not in report and services.running_work() == 0
    assert services.plugin_health() == {"jupyter": {"status": "unhealthy", "error": report["error"][:1000]}}


def test_without_jupyter_server_the_plugin_is_unhealthy(services, monkeypatch):
    monkeypatch.setattr(jupyter.importlib.util, "find_spec", lambda name: None)
    assert services.plugin_health() == {
        "jupyter": {"status": "unhealthy", "error": "jupyter-server is not installed on this worker"}
    }


def test_a_running_service_without_its_server_is_an_error(agent, api, services):
    api.answers[SERVICES] = {"services": [service("nb-3", "running")]}  # the agent restarted
    services.tick(agent.ctx)
    (report,) = api.reports(state_path("nb-3"))
    assert report["status"] == "error" and "restarted" in report["error"]
