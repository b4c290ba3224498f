"""Uploaded models go to a GPU agent its owner may reach; the agent's reports make them ready (predictions go to
its endpoint) or failed (with why); `models_loaded` counts what live agents really serve."""

from __future__ import annotations

import httpx
import pytest

from aiplane.gpufarm.records import GpuAgentRecord
from tests.integration.gpufarm.conftest import new_user
from tests.integration.gpufarm.test_loadbalancer_and_proxy import LoopbackAgent, agent_at, register


@pytest.fixture
def listener():
    agent = LoopbackAgent("model-host")
    yield agent
    agent.stop()


def upload(gpufarm, headers, filename: str = "double.onnx", content: bytes = b"onnx-bytes") -> str:
    response = gpufarm.post("/api/v1/models/upload", headers=headers, files={"model": (filename, content)})
    assert response.status_code == 201, response.text
    return response.json()["model_id"]


def models_of(gpufarm, agent) -> list[dict]:
    response = gpufarm.post(f"/api/v1/gpu/agents/{agent.instance_id}/models", headers=agent.auth)
    assert response.status_code == 200, response.text
    return response.json()["models"]


def report(gpufarm, agent, model_id: str, **body):
    return gpufarm.post(
        f"/api/v1/gpu/agents/{agent.instance_id}/models/{model_id}/state", headers=agent.auth, json=body
    )


def loaded(gpufarm) -> int:
    return gpufarm.get("/stats").json()["models_loaded"]


def test_an_uploaded_model_is_served_by_its_owners_agent_and_predicts_there(gpufarm, listener):
    owner_id, owner = new_user("models")
    agent = agent_at(owner_id, listener)
    register(gpufarm, agent)
    model_id = upload(gpufarm, owner)
    before = loaded(gpufarm)

    (assignment,) = [model for model in models_of(gpufarm, agent) if model["model_id"] == model_id]
    assert assignment["format"] == "onnx" and assignment["status"] == "loading" and assignment["size_bytes"] == 10
    assert httpx.get(assignment["download_url"]).content == b"onnx-bytes"  # a presigned GET: no AWS credentials needed
    assert [model["model_id"] for model in models_of(gpufarm, agent)] == [model_id]  # asking again: the same one

    endpoint = f"{agent.url}/models/{model_id}/predict"
    served = report(gpufarm, agent, model_id, status="serving", endpoint=endpoint)
    assert served.status_code == 200 and served.json() == {"model_id": model_id, "status": "ready"}
    assert gpufarm.get(f"/api/v1/models/{model_id}", headers=owner).json()["status"] == "ready"
    assert loaded(gpufarm) == before + 1

    prediction = gpufarm.post(f"/api/v1/models/{model_id}/predict", headers=owner, json={"inputs": {"x": [1.0]}})
    assert prediction.status_code == 200, prediction.text
    outputs = prediction.json()["outputs"]
    assert outputs["served_by"] == "model-host" and outputs["path"] == f"/models/{model_id}/predict"
    assert outputs["payload"] == {"inputs": {"x": [1.0]}, "parameters": {}}

    GpuAgentRecord(GpuAgentRecord.key(agent.instance_id), "META").update(
        actions=[GpuAgentRecord.expires_at_epoch.set(0)]
    )  # it stopped heartbeating
    assert loaded(gpufarm) == before


def test_another_users_agent_never_gets_the_model_unless_shared(gpufarm, auth, listener):
    _, owner = new_user("models")
    stranger_id, _ = new_user("stranger")
    strangers_agent = agent_at(stranger_id, listener)
    register(gpufarm, strangers_agent)
    model_id = upload(gpufarm, owner)
    assert model_id not in [model["model_id"] for model in models_of(gpufarm, strangers_agent)]
    shared = gpufarm.put(
        f"/api/v1/loadbalancer/agents/{strangers_agent.instance_id}", headers=auth, json={"shared": True}
    )
    assert shared.status_code == 200
    try:
        assert model_id in [model["model_id"] for model in models_of(gpufarm, strangers_agent)]
    finally:  # a shared agent would take every later test's models
        gpufarm.put(f"/api/v1/loadbalancer/agents/{strangers_agent.instance_id}", headers=auth, json={"shared": False})
        report(gpufarm, strangers_agent, model_id, status="failed", error="test over")


def test_a_format_the_agent_cannot_serve_fails_with_its_reason(gpufarm, listener):
    owner_id, owner = new_user("models")
    agent = agent_at(owner_id, listener)
    register(gpufarm, agent)
    model_id = upload(gpufarm, owner, "weights.pt", b"torch")
    models_of(gpufarm, agent)
    assert report(gpufarm, agent, model_id, status="failed").status_code == 400  # the reason is required
    reason = "this agent serves onnx models (onnxruntime); pytorch is not served"
    assert report(gpufarm, agent, model_id, status="failed", error=reason).json()["status"] == "failed"
    detail = gpufarm.get(f"/api/v1/models/{model_id}", headers=owner).json()
    assert detail["status"] == "failed" and detail["error"] == reason
    predicted = gpufarm.post(f"/api/v1/models/{model_id}/predict", headers=owner, json={"inputs": [1]})
    assert predicted.status_code == 409 and predicted.json()["details"]["reason"] == reason
    assert model_id not in [model["model_id"] for model in models_of(gpufarm, agent)]  # not handed out again


def test_reports_are_checked_before_anything_is_written(gpufarm, listener):
    owner_id, owner = new_user("models")
    agent = agent_at(owner_id, listener)
    register(gpufarm, agent)
    model_id = upload(gpufarm, owner)
    unassigned = report(gpufarm, agent, model_id, status="serving", endpoint=f"{agent.url}/models/{model_id}/predict")
    assert unassigned.status_code == 409  # nobody handed it to this agent yet
    models_of(gpufarm, agent)
    for endpoint in (
        "http://127.0.0.1:9/steal",
        "http://169.254.169.254/latest/meta-data/",
        f"{agent.url.replace('http://', 'http://user@')}/x",
    ):
        refused = report(gpufarm, agent, model_id, status="serving", endpoint=endpoint)
        assert refused.status_code == 400 and refused.json()["code"] == "VALIDATION_ERROR", endpoint
    assert gpufarm.get(f"/api/v1/models/{model_id}", headers=owner).json()["status"] == "loading"
    assert report(gpufarm, agent, "no-such-model", status="failed", error="x").status_code == 404
    assert (
        gpufarm.post(f"/api/v1/gpu/agents/{agent.instance_id}/models", headers=owner).status_code == 403
    )  # user keys: never
    other_id, _ = new_user("other")
    other = agent_at(other_id, listener)
    impostor = gpufarm.post(f"/api/v1/gpu/agents/{agent.instance_id}/models", headers=other.auth)
    assert impostor.status_code == 403  # a credential speaks for its own instance only


def test_the_model_of_an_agent_that_stopped_heartbeating_loads_on_another(gpufarm, listener):
    owner_id, owner = new_user("models")
    first, second = agent_at(owner_id, listener), agent_at(owner_id, listener)
    register(gpufarm, first)
    model_id = upload(gpufarm, owner)
    models_of(gpufarm, first)
    report(gpufarm, first, model_id, status="serving", endpoint=f"{first.url}/models/{model_id}/predict")
    register(gpufarm, second)
    assert model_id not in [model["model_id"] for model in models_of(gpufarm, second)]  # the first still serves it
    GpuAgentRecord(GpuAgentRecord.key(first.instance_id), "META").update(
        actions=[GpuAgentRecord.expires_at_epoch.set(0)]
    )
    (moved,) = [model for model in models_of(gpufarm, second) if model["model_id"] == model_id]
    assert moved["status"] == "loading"
    assert gpufarm.get(f"/api/v1/models/{model_id}", headers=owner).json()["status"] == "loading"
    late = report(gpufarm, first, model_id, status="serving", endpoint=f"{first.url}/models/{model_id}/predict")
    assert late.status_code in (403, 404, 409)  # the first agent no longer speaks for it


def test_the_proxy_reaches_a_served_model_only_for_its_owner(gpufarm, auth, listener):
    owner_id, owner = new_user("models")
    _, other = new_user("other")
    agent = agent_at(owner_id, listener)
    register(gpufarm, agent)
    model_id = upload(gpufarm, owner)
    gpufarm.put(f"/api/v1/loadbalancer/agents/{agent.instance_id}", headers=auth, json={"shared": True})
    try:

        def proxy(headers, path):
            return gpufarm.post(
                "/api/v1/gpu/proxy",
                headers=headers,
                json={"target": agent.instance_id, "path": path, "payload": {"inputs": [[1.0, 2.0, 3.0]]}},
            )

        mine = proxy(owner, f"/models/{model_id}/predict")
        assert mine.status_code == 200 and mine.json()["path"] == f"/models/{model_id}/predict"
        for path in (f"/models/{model_id}/predict", f"//models/{model_id}/predict", f"/models%2F{model_id}/predict"):
            refused = proxy(other, path)  # the agent is shared, the model is not
            assert refused.status_code in (403, 404), (path, refused.text)
        for path in (f"/v1/../models/{model_id}/predict", f"/v1/%2e%2e/models/{model_id}/predict"):
            assert proxy(other, path).status_code == 400, path
        assert proxy(other, "/v1/inference").status_code == 200  # the rest of what the shared agent fronts
    finally:
        gpufarm.put(f"/api/v1/loadbalancer/agents/{agent.instance_id}", headers=auth, json={"shared": False})
        models_of(gpufarm, agent)
        report(gpufarm, agent, model_id, status="failed", error="test over")
