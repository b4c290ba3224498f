"""End to end: `python -m aiplane_local` (what `make run` starts) answers on all four base paths."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60
HEALTH_ROUTES = {"appproxy": ["/health"], "mlworker": ["/health"], "gpufarm": ["/health", "/metrics", "/stats"]}
PROTECTED = {"runtime": "/backends", "appproxy": "/api/worker", "mlworker": "/v1/tasks", "gpufarm": "/api/v1/quota"}


@pytest.fixture(scope="module")
def server():
    environment = {
        **os.environ,
        "AIPLANE_HOST": "127.0.0.1",
        # 0: the stack binds free ports itself and names them in its ready line, so no port picked
        # here can be taken by another socket before the child binds it.
        **dict.fromkeys(("PORT", "AWS_PORT", "APPPROXY_PORT", "REDIS_PORT"), "0"),
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
    printed: list[str] = []
    ready = threading.Event()

    def read_output() -> None:  # keeps draining, so the child never blocks on a full pipe
        for line in process.stdout:
            printed.append(line)
            if line.startswith("aiplane ready:"):
                ready.set()

    threading.Thread(target=read_output, daemon=True).start()
    if not ready.wait(READY_TIMEOUT_S):
        process.kill()
        tail = "".join(printed[-40:])
        pytest.fail(f"the local stack printed no ready line in {READY_TIMEOUT_S} s (exit {process.poll()}):\n{tail}")
    ready_line = next(line for line in printed if line.startswith("aiplane ready:"))
    yield re.match(r"aiplane ready: (http://\S+)/\{", ready_line).group(1), ready_line
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
