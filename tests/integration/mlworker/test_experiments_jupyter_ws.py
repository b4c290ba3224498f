"""Experiments, Jupyter services and the /ws endpoint."""

from __future__ import annotations

import pytest


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


def test_jupyter_service_lifecycle(client, admin):
    created = client.post("/v1/jupyter/services", headers=admin, json={"name": "notebook", "workspace": "/ws/a"})
    assert created.status_code == 201
    service = created.json()
    assert set(service) == {"id", "name", "status", "token", "created_at"} and service["status"] == "starting"
    running = client.post(f"/v1/jupyter/services/{service['id']}/state", headers=admin,
                          json={"status": "running", "url": "https://gpu-1.example:8888/lab"})
    assert running.status_code == 200 and running.json()["url"] == "https://gpu-1.example:8888/lab"
    assert client.delete(f"/v1/jupyter/services/{service['id']}", headers=admin).status_code == 204
    (listed,) = client.get("/v1/jupyter/services", headers=admin).json()
    assert listed["status"] == "stopping"
    client.post(f"/v1/jupyter/services/{service['id']}/state", headers=admin, json={"status": "stopped"})
    assert client.get("/v1/jupyter/services", headers=admin).json()[0]["status"] == "stopped"
    assert client.delete(f"/v1/jupyter/services/{service['id']}", headers=admin).status_code == 204  # idempotent


def test_stopping_a_service_no_worker_started_ends_it(client, admin):
    service = client.post("/v1/jupyter/services", headers=admin, json={"name": "never-started"}).json()
    client.delete(f"/v1/jupyter/services/{service['id']}", headers=admin)
    assert client.get("/v1/jupyter/services", headers=admin).json()[0]["status"] == "stopped"
    late = client.post(f"/v1/jupyter/services/{service['id']}/state", headers=admin, json={"status": "running", "url": "http://x"})
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
