"""Plugin health comes from what agents report: the agent's components check the plugins they run,
its mlworker heartbeat carries the results, the worker keeps them, and the health routes answer
from the fresh ones only. Here the real agent components talk to the API in process."""

from __future__ import annotations

import time

import httpx
import pytest
from aiplane_agent.api import ControlPlane
from aiplane_agent.components import AgentContext
from aiplane_agent.config import AgentConfig
from aiplane_agent.inventory import Inventory
from aiplane_agent.runners.process import ProcessRunner
from aiplane_agent.services.jupyter import JupyterServices
from aiplane_agent.tasks import TaskWorker

from aiplane.mlworker import plugins
from aiplane.mlworker.models import WorkerRecord, worker_key

API = "http://mlworker.invalid"  # never dialled: the transport hands each request to the in-process app


def in_process(client):
    def forward(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method,
            request.url.path.removeprefix("/mlworker") or "/",
            content=request.content,
            headers=dict(request.headers),
        )
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    return httpx.MockTransport(forward)


@pytest.fixture
def agent(client, admin, tmp_path):
    """An agent's mlworker and Jupyter components, as `Agent` wires them (the Jupyter component's
    check is what the heartbeat carries)."""
    config = AgentConfig(
        credential=admin["X-API-Key"],
        mlworker_url=f"{API}/mlworker",
        host="127.0.0.1",
        state_dir=tmp_path,
        heartbeat_s=0,
        poll_s=3600,
        service_slots=1,
    )
    ctx = AgentContext(
        config=config,
        api=ControlPlane(config, transport=in_process(client)),
        runner=ProcessRunner(),
        inventory=Inventory([], 2, 2, 4),
        instance_id="i-health",
        worker_id="gpu-health",
        url="http://127.0.0.1:1",
        state_dir=tmp_path,
    )
    jupyter = JupyterServices(ctx)
    ctx.plugin_health = jupyter.plugin_health
    worker = TaskWorker(ctx)
    yield worker, jupyter
    ctx.api.close()


def health(client, admin, name: str = "jupyter") -> dict:
    response = client.get(f"/v1/plugins/{name}/health", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_active_worker_alone_does_not_make_a_plugin_healthy(client, admin, register):
    register("gpu-1")  # the old answer: "enabled and an active worker" was enough to say healthy
    answer = health(client, admin)
    assert answer["status"] == "unhealthy" and "no agent reported it" in answer["reason"] and "last_check" not in answer
    assert client.get("/v1/plugins/jupyter", headers=admin).json()["status"] == {
        "name": "jupyter",
        "status": "unhealthy",
    }


def test_the_agents_checks_are_what_the_health_routes_answer(client, admin, agent):
    worker, jupyter = agent
    worker.tick(worker.ctx)  # registers, then heartbeats with the Jupyter component's check
    assert worker.registered
    answer = health(client, admin)
    assert answer["status"] == "healthy" and [report["worker_id"] for report in answer["workers"]] == ["gpu-health"]
    stored = WorkerRecord.get(worker_key("gpu-health"), "META").plugin_health["jupyter"]
    assert answer["last_check"] == stored["reported_at"] and stored["status"] == "healthy"
    plugin = client.get("/v1/plugins/jupyter", headers=admin).json()["status"]
    assert plugin == {"name": "jupyter", "status": "healthy", "last_check": stored["reported_at"]}

    jupyter.last_error = "the Jupyter server exited with status 1: port in use"
    worker.tick(worker.ctx)
    answer = health(client, admin)
    assert answer["status"] == "unhealthy" and "port in use" in answer["reason"]

    # A second worker whose agent finds it healthy: some are, some are not.
    client.post("/v1/scheduler/workers", headers=admin, json={"id": "gpu-2", "capabilities": {"gpu_count": 1}})
    client.post(
        "/v1/scheduler/workers/gpu-2/heartbeat", headers=admin, json={"plugins": {"jupyter": {"status": "healthy"}}}
    )
    assert health(client, admin)["status"] == "degraded"


def test_reports_go_stale(client, admin, agent):
    worker, _ = agent
    worker.tick(worker.ctx)
    assert health(client, admin)["status"] == "healthy"
    record = WorkerRecord.get(worker_key("gpu-health"), "META")
    old = time.time() - plugins.REPORT_FRESH_S - 1
    record.update(
        actions=[
            WorkerRecord.plugin_health.set({"jupyter": {**record.plugin_health["jupyter"], "reported_epoch": old}})
        ]
    )
    answer = health(client, admin)
    assert answer["status"] == "unhealthy" and "no agent reported it" in answer["reason"]


def test_an_unknown_plugin_in_a_heartbeat_is_refused(client, admin, register):
    register("gpu-1")
    for body in ({"plugins": {"nope": {"status": "healthy"}}}, {"plugins": {"jupyter": {"status": "fine"}}}):
        response = client.post("/v1/scheduler/workers/gpu-1/heartbeat", headers=admin, json=body)
        assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"
    assert WorkerRecord.get(worker_key("gpu-1"), "META").plugin_health == {}
