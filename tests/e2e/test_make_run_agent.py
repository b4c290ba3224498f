"""The one agent `make run` starts (LocalAgent with gpufarm_url and service slots, as aiplane_local.__main__
starts it): this machine joins the gpufarm fleet, so any local user's uploaded ONNX model predicts on it, a
Jupyter service answers at its url, and any local user's task runs on it (its worker is shared)."""

from __future__ import annotations

import httpx
import pytest

from aiplane_local.gpu_agents import LocalAgent
from tests.e2e.conftest import wait_for
from tests.integration.gpufarm.conftest import new_user
from tests.integration.mlworker.conftest import new_user_headers
from tests.onnx_models import affine_model


@pytest.fixture(scope="module")
def local_agent(api_base, admin_api_key):
    agent = LocalAgent(f"{api_base}/mlworker", admin_api_key, gpufarm_url=f"{api_base}/gpufarm", service_slots=1)
    yield agent
    agent.stop()


def test_a_local_users_onnx_model_predicts_on_this_machine(api_base, local_agent):
    _, user = new_user("make-run")
    with httpx.Client(base_url=f"{api_base}/gpufarm", headers=user, timeout=30) as gpufarm:
        uploaded = gpufarm.post("/api/v1/models/upload", files={"model": ("affine.onnx", affine_model(3.0, -1.0))})
        assert uploaded.status_code == 201, uploaded.text
        model_id = uploaded.json()["model_id"]
        ready = wait_for(lambda: gpufarm.get(f"/api/v1/models/{model_id}").json()["status"] != "loading", timeout_s=60)
        assert ready and gpufarm.get(f"/api/v1/models/{model_id}").json()["status"] == "ready"
        predicted = gpufarm.post(f"/api/v1/models/{model_id}/predict", json={"inputs": {"x": [[1.0, 0.0, 2.0]]}})
        assert predicted.status_code == 200, predicted.text
        assert predicted.json()["outputs"] == {"y": [[2.0, -1.0, 5.0]]}  # x * 3 - 1


def test_a_jupyter_service_answers_at_its_url_on_this_machine(api_base, admin_api_key, local_agent):
    with httpx.Client(base_url=f"{api_base}/mlworker", headers={"X-API-Key": admin_api_key}, timeout=30) as mlworker:
        service = mlworker.post("/v1/jupyter/services", json={"name": "make-run"}).json()

        def current() -> dict:
            return next(item for item in mlworker.get("/v1/jupyter/services").json() if item["id"] == service["id"])

        running = wait_for(lambda: (item := current())["status"] != "starting" and item, timeout_s=120)
        assert running["status"] == "running", running
        status = httpx.get(f"{running['url']}api/status", headers={"Authorization": f"token {service['token']}"})
        assert status.status_code == 200 and "started" in status.json()
        mlworker.delete(f"/v1/jupyter/services/{service['id']}")
        wait_for(lambda: current()["status"] == "stopped", timeout_s=30)


def test_any_local_users_task_runs_on_this_machine(api_base, local_agent):
    """The agent speaks with the admin's local contract credential, yet its worker is shared: a
    local user's task runs here, not only the admin's."""
    with httpx.Client(base_url=f"{api_base}/mlworker", headers=new_user_headers(), timeout=30) as mlworker:
        submitted = mlworker.post("/v1/tasks", json={"job_name": "any-user", "entrypoint": '/bin/bash -c "echo mine"'})
        assert submitted.status_code == 201, submitted.text
        task = wait_for(
            lambda: (
                (item := mlworker.get(f"/v1/tasks/{submitted.json()['id']}").json())["status"]
                in ("completed", "failed")
                and item
            ),
            timeout_s=60,
        )
        assert task["status"] == "completed" and "mine" in task["output"], task
        assert task["worker_id"].startswith("gpu-contract_local_")  # the local contract's worker
