"""End to end: `python -m aiplane_local` (what `make run` starts) answers on all four base paths."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from aiplane_local.stack import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60
HEALTH_ROUTES = {"appproxy": ["/health"], "mlworker": ["/health"], "gpufarm": ["/health", "/metrics", "/stats"]}
PROTECTED = {"runtime": "/backends", "appproxy": "/api/worker", "mlworker": "/v1/tasks", "gpufarm": "/api/v1/quota"}


@pytest.fixture(scope="module")
def server():
    port, aws_port, appproxy_port, redis_port = free_port(), free_port(), free_port(), free_port()
    environment = {
        **os.environ,
        "PORT": str(port),
        "AWS_PORT": str(aws_port),
        "APPPROXY_PORT": str(appproxy_port),
        "REDIS_PORT": str(redis_port),
        "AIPLANE_ADMIN_API_KEY": "e2e-admin-key",
    }
    for variable in ("AWS_ENDPOINT_URL", "MOTO_PORT"):  # the child starts its own embedded AWS
        environment.pop(variable, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "aiplane_local"],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    ready_line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        if line.startswith("aiplane ready:"):
            ready_line = line
            break
    if not ready_line:
        process.kill()
        pytest.fail("the local stack did not print its readiness line")
    yield f"http://127.0.0.1:{port}", ready_line
    process.terminate()
    process.wait(timeout=15)


def test_readiness_line_names_the_base_url_endpoint_and_credentials(server):
    base_url, ready_line = server
    assert base_url in ready_line
    assert re.search(r"AWS endpoint http://127\.0\.0\.1:\d+", ready_line)
    assert re.search(r"Redis \(appproxy workers\) redis://127\.0\.0\.1:\d+", ready_line)
    assert "admin API key e2e-admin-key" in ready_line
    assert "appproxy manager token" in ready_line and "appproxy worker token" in ready_line


def test_the_coordinator_also_listens_without_a_prefix_for_workers(server):
    _, ready_line = server
    coordinator_url = re.search(r"appproxy coordinator \(no prefix, for workers\) (http://\S+)", ready_line).group(1)
    with httpx.Client(base_url=coordinator_url, timeout=10) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/api/worker").status_code == 401  # the worker's own path, as it joins it
        assert client.get("/runtime/backends").status_code == 404  # only the coordinator lives there


@pytest.mark.parametrize("family", ["runtime", "appproxy", "mlworker", "gpufarm"])
def test_family_serves_openapi_health_and_refuses_without_credentials(server, family):
    base_url, _ = server
    with httpx.Client(base_url=f"{base_url}/{family}", timeout=10) as client:
        assert client.get("/openapi.json").json()["paths"]
        for path in HEALTH_ROUTES.get(family, []):
            assert client.get(path).status_code == 200
        refused = client.get(PROTECTED[family])
        assert refused.status_code == 401
        assert "error" in refused.json()


def test_the_local_agent_runs_a_submitted_task(server):
    """`make run` starts one local agent: a trivial task completes with its output."""
    base_url, _ = server
    with httpx.Client(base_url=f"{base_url}/mlworker", headers={"X-API-Key": "e2e-admin-key"}, timeout=10) as client:
        task_id = client.post(
            "/v1/tasks", json={"job_name": "hello", "entrypoint": '/bin/bash -c "echo hello"'}
        ).json()["id"]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (task := client.get(f"/v1/tasks/{task_id}").json())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, task
            time.sleep(0.2)
    assert task["status"] == "completed" and "hello" in task["output"]


def test_admin_key_from_the_environment_is_accepted(server):
    base_url, _ = server
    response = httpx.get(f"{base_url}/gpufarm/api/v1/quota", headers={"Authorization": "Bearer e2e-admin-key"})
    assert response.status_code != 401


def test_websockets_push_task_and_gpufarm_updates(server):
    """What `make run` serves on /ws: pong for ping, task_update and task_complete for a submitted
    task, and a gpufarm status event after subscribe (the dispatchers run the sender)."""
    import json

    from websockets.sync.client import connect

    base_url, _ = server
    ws_url = base_url.replace("http://", "ws://")
    key = {"X-API-Key": "e2e-admin-key"}
    with connect(f"{ws_url}/mlworker/ws", additional_headers=key) as ws:
        ws.send("ping")
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
        # One GPU: the local agent (no GPU slots by default) never leases it, so the cancel finds it queued.
        task = httpx.post(
            f"{base_url}/mlworker/v1/tasks", headers=key, json={"job_name": "e2e-ws", "gpu": 1}, timeout=10
        )
        assert task.status_code == 201
        task_id = task.json()["id"]
        queued = json.loads(ws.recv(timeout=20))
        assert (queued["type"], queued["task_id"], queued["status"]) == ("task_update", task_id, "queued")
        assert httpx.delete(f"{base_url}/mlworker/v1/tasks/{task_id}", headers=key, timeout=10).status_code == 204
        seen = [json.loads(ws.recv(timeout=20)) for _ in range(2)]
        assert [(m["type"], m["status"]) for m in seen] == [("task_update", "failed"), ("task_complete", "failed")]
    with connect(f"{ws_url}/gpufarm/ws", additional_headers={"Authorization": "Bearer e2e-admin-key"}) as ws:
        ws.send(json.dumps({"type": "subscribe"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        uploaded = httpx.post(
            f"{base_url}/gpufarm/api/v1/models/upload",
            headers={"Authorization": "Bearer e2e-admin-key"},
            files={"model": ("net.onnx", b"onnx-bytes")},
            timeout=10,
        )
        assert uploaded.status_code < 300, uploaded.text
        event = json.loads(ws.recv(timeout=20))
        assert (event["type"], event["model_id"], event["status"]) == (
            "model_status",
            uploaded.json()["model_id"],
            "loading",
        )
