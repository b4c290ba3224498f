"""Experiments, Jupyter services and the /ws endpoint."""

from __future__ import annotations

import pytest


@pytest.fixture
def register_services(client, admin):
    def register_worker(worker_id: str, service_slots: int) -> None:
        response = client.post(
            "/v1/scheduler/workers", headers=admin, json={"id": worker_id, "service_slots": service_slots}
        )
        assert response.status_code in (200, 201), response.text

    return register_worker


def test_experiments_create_and_list(client, admin):
    response = client.post("/v1/experiments", headers=admin, json={"name": "baseline", "description": "first try"})
    assert response.status_code == 201
    experiment = response.json()
    assert set(experiment) == {"id", "name", "commit_id", "created_at", "status"}
    assert experiment["status"] == "active" and len(experiment["commit_id"]) == 40
    client.post("/v1/experiments", headers=admin, json={"name": "second"})
    assert [e["name"] for e in client.get("/v1/experiments", headers=admin).json()] == ["baseline", "second"]


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 129}])
def test_experiment_validation(client, admin, body):
    response = client.post("/v1/experiments", headers=admin, json=body)
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"
    assert client.get("/v1/experiments", headers=admin).json() == []


def take(client, admin, worker_id: str = "gpu-1") -> list[dict]:
    response = client.post(f"/v1/jupyter/workers/{worker_id}/services", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()["services"]


def report(client, admin, service_id: str, worker_id: str = "gpu-1", **body):
    return client.post(f"/v1/jupyter/services/{service_id}/state", headers=admin, json={"worker_id": worker_id, **body})


def test_jupyter_service_lifecycle(client, admin, register_services):
    register_services("gpu-1", 2)
    created = client.post("/v1/jupyter/services", headers=admin, json={"name": "notebook", "workspace": "/ws/a"})
    assert created.status_code == 201
    service = created.json()
    assert set(service) == {"id", "name", "status", "token", "created_at"} and service["status"] == "starting"
    (assigned,) = take(client, admin)
    assert assigned == {**service, "image": "jupyter/pytorch:latest", "workspace": "/ws/a"}
    running = report(client, admin, service["id"], status="running", url="https://gpu-1.example:8888/lab")
    assert running.status_code == 200 and running.json()["url"] == "https://gpu-1.example:8888/lab"
    assert client.delete(f"/v1/jupyter/services/{service['id']}", headers=admin).status_code == 204
    (listed,) = client.get("/v1/jupyter/services", headers=admin).json()
    assert listed["status"] == "stopping"
    assert [held["status"] for held in take(client, admin)] == ["stopping"]  # the worker learns to stop it
    report(client, admin, service["id"], status="stopped")
    assert client.get("/v1/jupyter/services", headers=admin).json()[0]["status"] == "stopped"
    assert take(client, admin) == []
    assert client.delete(f"/v1/jupyter/services/{service['id']}", headers=admin).status_code == 204  # idempotent


def test_a_worker_takes_starting_services_up_to_its_slots_and_only_it_reports(client, admin, register_services):
    register_services("gpu-1", 1)
    register_services("gpu-2", 1)
    first = client.post("/v1/jupyter/services", headers=admin, json={"name": "first"}).json()
    second = client.post("/v1/jupyter/services", headers=admin, json={"name": "second"}).json()
    assert [held["id"] for held in take(client, admin, "gpu-1")] == [first["id"]]  # oldest first, one slot
    assert [held["id"] for held in take(client, admin, "gpu-1")] == [first["id"]]  # asking again takes no more
    assert [held["id"] for held in take(client, admin, "gpu-2")] == [second["id"]]
    stolen = report(client, admin, first["id"], worker_id="gpu-2", status="running", url="http://127.0.0.1:1/")
    assert stolen.status_code == 409 and "not assigned" in stolen.json()["error"]
    no_url = report(client, admin, first["id"], status="running")
    assert no_url.status_code == 409


def test_no_slots_no_services(client, admin, register_services):
    register_services("cpu-only", 0)
    client.post("/v1/jupyter/services", headers=admin, json={"name": "waits"})
    assert take(client, admin, "cpu-only") == []
    assert client.post("/v1/jupyter/workers/nobody/services", headers=admin).status_code == 404


def test_a_failed_start_reports_its_reason(client, admin, register_services):
    register_services("gpu-1", 1)
    service = client.post("/v1/jupyter/services", headers=admin, json={"name": "broken"}).json()
    take(client, admin)
    assert report(client, admin, service["id"], status="error").status_code == 409  # a reason is required
    failed = report(client, admin, service["id"], status="error", error="jupyter-server exited with status 1")
    assert failed.status_code == 200
    assert failed.json()["status"] == "error" and failed.json()["error"] == "jupyter-server exited with status 1"
    assert take(client, admin) == []


def test_a_starting_service_of_an_offline_worker_goes_to_another(client, admin, register_services):
    from aiplane.mlworker import workers

    register_services("gpu-1", 1)
    register_services("gpu-2", 1)
    service = client.post("/v1/jupyter/services", headers=admin, json={"name": "orphan"}).json()
    take(client, admin, "gpu-1")
    silent = workers.get_worker("gpu-1")
    silent.last_heartbeat_epoch = 0  # went silent
    silent.save()
    assert [held["id"] for held in take(client, admin, "gpu-2")] == [service["id"]]
    late = report(client, admin, service["id"], worker_id="gpu-1", status="running", url="http://127.0.0.1:1/")
    assert late.status_code == 409


def test_stopping_a_service_a_worker_is_starting_lets_the_worker_stop_it(client, admin, register_services):
    register_services("gpu-1", 1)
    service = client.post("/v1/jupyter/services", headers=admin, json={"name": "quick"}).json()
    take(client, admin)
    client.delete(f"/v1/jupyter/services/{service['id']}", headers=admin)
    assert client.get("/v1/jupyter/services", headers=admin).json()[0]["status"] == "stopping"
    late = report(client, admin, service["id"], status="running", url="http://127.0.0.1:1/")
    assert late.status_code == 409  # too late: the worker stops its server and reports stopped
    assert report(client, admin, service["id"], status="stopped").status_code == 200


def test_only_admins_speak_for_workers(client, user_headers, admin, register_services):
    register_services("gpu-1", 1)
    assert client.post("/v1/jupyter/workers/gpu-1/services", headers=user_headers).status_code == 403
    service = client.post("/v1/jupyter/services", headers=user_headers, json={"name": "mine"}).json()
    assert report(client, user_headers, service["id"], status="running", url="http://x/").status_code == 403


def test_a_contracts_agent_credential_runs_services_for_its_own_worker_only(client, admin):
    from aiplane.gpufarm import agent_credentials
    from aiplane.identity.principal import BOOTSTRAP_ADMIN_ID, agent_worker_id

    agent = {"X-API-Key": agent_credentials.issue(BOOTSTRAP_ADMIN_ID, "ct-jupyter-1").api_key}
    own, other = agent_worker_id("ct-jupyter-1"), agent_worker_id("ct-jupyter-2")
    assert client.post("/v1/scheduler/workers", headers=agent, json={"id": own, "service_slots": 1}).status_code == 201
    service = client.post("/v1/jupyter/services", headers=admin, json={"name": "on-a-contract"}).json()
    assert client.post(f"/v1/jupyter/workers/{other}/services", headers=agent).status_code == 403
    assert [held["id"] for held in take(client, agent, own)] == [service["id"]]
    assert report(client, agent, service["id"], worker_id=other, status="running", url="http://x/").status_code == 403
    assert report(client, agent, service["id"], worker_id=own, status="running", url="http://x/").status_code == 200
    assert client.get("/v1/jupyter/services", headers=agent).status_code == 403  # the worker protocol only


def test_stopping_a_service_no_worker_started_ends_it(client, admin):
    service = client.post("/v1/jupyter/services", headers=admin, json={"name": "never-started"}).json()
    client.delete(f"/v1/jupyter/services/{service['id']}", headers=admin)
    assert client.get("/v1/jupyter/services", headers=admin).json()[0]["status"] == "stopped"
    late = report(client, admin, service["id"], status="running", url="http://x")
    assert late.status_code == 409 and late.json()["code"] == "CONFLICT"


def test_jupyter_errors(client, admin, user_headers):
    assert client.post("/v1/jupyter/services", headers=admin, json={}).status_code == 400
    missing = client.delete("/v1/jupyter/services/nope", headers=admin)
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    service = client.post("/v1/jupyter/services", headers=admin, json={"name": "admins"}).json()
    assert client.delete(f"/v1/jupyter/services/{service['id']}", headers=user_headers).status_code == 403
    assert client.get("/v1/jupyter/services", headers=user_headers).json() == []  # users see their own


def test_ws_over_plain_http_answers_426_in_the_envelope(client, admin):
    response = client.get("/ws", headers=admin)
    assert response.status_code == 426 and response.headers["upgrade"] == "websocket"
    assert set(response.json()) == {"error", "code", "trace_id"} and response.json()["code"] == "BAD_REQUEST"
    assert client.get("/ws").status_code == 401
