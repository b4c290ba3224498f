"""What the agent serves, end to end through the local HTTP server: a Jupyter service answers at its url
(Jupyter's own /api/status, with its token), an ONNX model uploaded through the API predicts its real
outputs, a format the agent cannot serve fails with the reason, and the gpufarm proxy reaches what the
agent fronts (a served model, its upstream inference server), never an echo."""

from __future__ import annotations

import httpx
import pytest

from aiplane_local.gpu_agents import start_agent_process, stop_agent_process
from aiplane_local.stack import free_port
from tests.e2e.conftest import wait_for
from tests.integration.gpufarm.conftest import new_user, running_contract
from tests.onnx_models import affine_model
from tests.standins import LoopbackServer, StandInHandler

QUICK = [
    "--host",
    "127.0.0.1",
    "--advertise-host",
    "127.0.0.1",
    "--heartbeat-s",
    "0.5",
    "--poll-s",
    "0.2",
    "--runner",
    "process",
]


class InferenceServer(LoopbackServer):
    """An inference server on the agent's host (its upstream): answers what it was asked, as a model server would."""

    def __init__(self) -> None:
        class Handler(StandInHandler):
            def do_POST(self):
                prompt = self.read_json()["prompt"]
                self.send_json({"completion": prompt.upper(), "path": self.path})

        super().__init__(Handler)


@pytest.fixture(scope="module")
def inference_server():
    server = InferenceServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gpu_host(api_base, inference_server, tmp_path_factory):
    """A user's running GPU contract with its agent (contract credential), fronting an inference server."""
    owner_id, owner = new_user("serving")
    port = free_port()
    contract = running_contract(owner_id, agent_port=port)
    agent = start_agent_process(
        [
            "--api-url",
            f"{api_base}/gpufarm",
            "--credential",
            contract.auth["Authorization"].removeprefix("Bearer "),
            "--instance-id",
            contract.instance_id,
            "--port",
            str(port),
            "--upstream",
            inference_server.url,
            "--state-dir",
            str(tmp_path_factory.mktemp("gpu-host")),
            *QUICK,
        ],
        {},
    )
    with httpx.Client(base_url=f"{api_base}/gpufarm", headers=owner, timeout=30) as gpufarm:
        wait_for(lambda: contract.instance_id in gpufarm.get("/api/v1/loadbalancer/loads").json()["loads"])
        yield gpufarm, contract
    stop_agent_process(agent)


def upload(gpufarm, filename: str, content: bytes) -> str:
    response = gpufarm.post("/api/v1/models/upload", files={"model": (filename, content)}, data={"name": filename})
    assert response.status_code == 201, response.text
    return response.json()["model_id"]


def settled(gpufarm, model_id: str) -> dict:
    return wait_for(
        lambda: (model := gpufarm.get(f"/api/v1/models/{model_id}").json())["status"] != "loading" and model,
        timeout_s=60,
    )


def test_an_onnx_model_uploaded_through_the_api_predicts_its_real_outputs(gpu_host):
    gpufarm, contract = gpu_host
    model_id = upload(gpufarm, "affine.onnx", affine_model(scale=2.0, offset=1.0))
    assert settled(gpufarm, model_id)["status"] == "ready"
    predicted = gpufarm.post(f"/api/v1/models/{model_id}/predict", json={"inputs": {"x": [[1.0, 2.0, 3.0]]}})
    assert predicted.status_code == 200, predicted.text
    body = predicted.json()
    assert body["outputs"] == {"y": [[3.0, 5.0, 7.0]]}  # x * 2 + 1, computed by onnxruntime on the agent
    assert body["metadata"]["runtime"] == "onnxruntime" and body["metadata"]["format"] == "onnx"
    assert gpufarm.get("/stats").json()["models_loaded"] >= 1
    assert "aiplane_models_loaded" in gpufarm.get("/metrics").text

    wrong = gpufarm.post(f"/api/v1/models/{model_id}/predict", json={"inputs": {"x": [[1.0, 2.0]]}})
    assert wrong.status_code == 400 and wrong.json()["details"]["upstream_status"] == 400

    # The proxy reaches the same served model on the agent.
    proxied = gpufarm.post(
        "/api/v1/gpu/proxy",
        json={
            "target": contract.instance_id,
            "path": f"/models/{model_id}/predict",
            "payload": {"inputs": [[0.0, 0.5, -1.0]]},
        },
    )
    assert proxied.status_code == 200 and proxied.json()["outputs"] == {"y": [[1.0, 2.0, -1.0]]}

    assert gpufarm.delete(f"/api/v1/models/{model_id}").status_code == 200
    wait_for(
        lambda: (
            gpufarm.post(
                "/api/v1/gpu/proxy",
                json={
                    "target": contract.instance_id,
                    "path": f"/models/{model_id}/predict",
                    "payload": {"inputs": [[0, 0, 0]]},
                },
            ).status_code
            == 404
        ),
        timeout_s=30,
    )  # unloaded, and gone from the registry


def test_a_format_the_agent_cannot_serve_fails_with_the_reason(gpu_host):
    gpufarm, _ = gpu_host
    model_id = upload(gpufarm, "weights.pt", b"not served here")
    model = settled(gpufarm, model_id)
    assert model["status"] == "failed" and "pytorch models are not served" in model["error"]
    predicted = gpufarm.post(f"/api/v1/models/{model_id}/predict", json={"inputs": [1]})
    assert predicted.status_code == 409 and predicted.json()["code"] == "MODEL_FAILED"


def test_the_proxy_reaches_the_inference_server_the_agent_fronts_never_an_echo(gpu_host):
    gpufarm, contract = gpu_host
    answer = gpufarm.post(
        "/api/v1/gpu/proxy",
        json={"target": contract.instance_id, "path": "/v1/inference", "payload": {"prompt": "hello world"}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"completion": "HELLO WORLD", "path": "/v1/inference"}
    assert answer.headers["x-gpu-instance"] == contract.instance_id


@pytest.fixture
def jupyter_worker(api_base, admin_api_key, tmp_path):
    """An agent that is an mlworker worker with one Jupyter service slot."""
    worker_id = "e2e-jupyter-worker"
    agent = start_agent_process(
        [
            "--mlworker-url",
            f"{api_base}/mlworker",
            "--credential",
            admin_api_key,
            "--worker-id",
            worker_id,
            "--instance-id",
            worker_id,
            "--port",
            str(free_port()),
            "--service-slots",
            "1",
            "--gpus",
            "0",
            "--state-dir",
            str(tmp_path),
            *QUICK,
        ],
        {},
    )
    with httpx.Client(base_url=f"{api_base}/mlworker", headers={"X-API-Key": admin_api_key}, timeout=30) as mlworker:
        wait_for(lambda: mlworker.get(f"/v1/scheduler/workers/{worker_id}").status_code == 200)
        yield mlworker
    stop_agent_process(agent)


def test_a_jupyter_service_answers_at_its_url_until_deleted(jupyter_worker):
    mlworker = jupyter_worker
    created = mlworker.post("/v1/jupyter/services", json={"name": "e2e-notebook"})
    assert created.status_code == 201 and created.json()["status"] == "starting"
    service_id, token = created.json()["id"], created.json()["token"]

    def listed() -> dict:
        return next(service for service in mlworker.get("/v1/jupyter/services").json() if service["id"] == service_id)

    running = wait_for(lambda: (service := listed())["status"] != "starting" and service, timeout_s=120)
    assert running["status"] == "running", running
    status = httpx.get(f"{running['url']}api/status", headers={"Authorization": f"token {token}"})
    assert status.status_code == 200 and "started" in status.json()  # Jupyter's own answer
    assert httpx.get(f"{running['url']}api/status").status_code == 403

    assert mlworker.delete(f"/v1/jupyter/services/{service_id}").status_code == 204
    assert wait_for(lambda: listed()["status"] == "stopped", timeout_s=30)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running['url']}api/status", headers={"Authorization": f"token {token}"})


def test_the_jupyter_plugins_health_is_what_the_running_agent_reports(jupyter_worker):
    health = wait_for(
        lambda: (answer := jupyter_worker.get("/v1/plugins/jupyter/health").json())["status"] == "healthy" and answer,
        timeout_s=30,
    )
    reported = {report["worker_id"]: report for report in health["workers"]}
    assert (
        reported["e2e-jupyter-worker"]["status"] == "healthy"
        and health["last_check"] >= reported["e2e-jupyter-worker"]["reported_at"]
    )
