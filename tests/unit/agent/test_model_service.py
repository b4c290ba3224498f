"""The models component: downloads an assigned ONNX model through its presigned URL, serves it with onnxruntime at
the endpoint it reports, answers the model's real outputs, and fails what it cannot serve with the reason."""

from __future__ import annotations

import httpx
import pytest
from aiplane_agent.services.models import ModelServing

from tests.onnx_models import affine_model
from tests.unit.agent.services_harness import AgentUnderTest, FileServer, ScriptedApi, wait_for

MODELS = "/gpufarm/api/v1/gpu/agents/i-test/models"


def state_path(model_id: str) -> str:
    return f"{MODELS}/{model_id}/state"


@pytest.fixture
def api():
    return ScriptedApi()


@pytest.fixture
def agent(tmp_path, api):
    agent = AgentUnderTest(tmp_path, api)
    yield agent
    agent.close()


@pytest.fixture
def artifact():
    server = FileServer(affine_model())
    yield server
    server.stop()


def assignment(model_id: str, url: str, model_format: str = "onnx") -> dict:
    return {
        "model_id": model_id,
        "name": model_id,
        "format": model_format,
        "version": "1.0.0",
        "status": "loading",
        "size_bytes": 1,
        "gpu_required": False,
        "download_url": url,
    }


def test_an_assigned_onnx_model_is_served_and_predicts_its_real_outputs(agent, api, artifact):
    models = agent.mount(ModelServing(agent.ctx))
    api.answers[MODELS] = {"models": [assignment("m1", artifact.url)]}
    models.tick(agent.ctx)
    (report,) = wait_for(lambda: api.reports(state_path("m1")))
    endpoint = f"{agent.ctx.url}/models/m1/predict"
    assert report == {"status": "serving", "endpoint": endpoint}

    answer = httpx.post(endpoint, json={"inputs": {"x": [[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]]}, "parameters": {}})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "outputs": {"y": [[3.0, 5.0, 7.0], [1.0, -1.0, 2.0]]},
        "metadata": {"runtime": "onnxruntime", "provider": "CPUExecutionProvider", "used_gpu": False},
    }
    single = httpx.post(endpoint, json={"inputs": [[10.0, 20.0, 30.0]]})  # one input: the list itself
    assert single.json()["outputs"] == {"y": [[21.0, 41.0, 61.0]]}

    for inputs in ({"x": [[1.0, 2.0]]}, {"z": [[1.0, 2.0, 3.0]]}, {"x": "abc"}):
        refused = httpx.post(endpoint, json={"inputs": inputs})
        assert refused.status_code == 400 and refused.json()["error"], inputs
    assert httpx.post(endpoint, content=b"{not json").status_code == 400

    models.tick(agent.ctx)  # still assigned: loaded once, reported once
    assert len(api.reports(state_path("m1"))) == 1 and models.running_work() == 1
    api.answers[MODELS] = {"models": []}  # deleted, or moved to another agent
    models.tick(agent.ctx)
    assert httpx.post(endpoint, json={"inputs": [[1.0, 2.0, 3.0]]}).status_code == 404
    assert models.running_work() == 0 and not list(agent.ctx.component_dir("models").iterdir())


def test_a_format_it_cannot_serve_fails_with_the_reason_without_downloading(agent, api):
    models = agent.mount(ModelServing(agent.ctx))
    api.answers[MODELS] = {"models": [assignment("torch", "http://127.0.0.1:9/never-fetched", "pytorch")]}
    models.tick(agent.ctx)
    (report,) = wait_for(lambda: api.reports(state_path("torch")))
    assert report["status"] == "failed" and "pytorch models are not served" in report["error"]
    assert "onnxruntime" in report["error"]


def test_an_artifact_that_does_not_load_fails_with_the_reason(agent, api):
    broken = FileServer(b"these bytes are not an ONNX model")
    try:
        models = agent.mount(ModelServing(agent.ctx))
        api.answers[MODELS] = {"models": [assignment("broken", broken.url)]}
        models.tick(agent.ctx)
        (report,) = wait_for(lambda: api.reports(state_path("broken")))
        assert report["status"] == "failed" and report["error"].startswith("could not load the model")
        assert models.running_work() == 0
    finally:
        broken.stop()


def test_a_serving_report_the_api_refuses_unloads_the_model(agent, api, artifact):
    models = agent.mount(ModelServing(agent.ctx))
    api.answers[MODELS] = {"models": [assignment("moved", artifact.url)]}
    api.answers[state_path("moved")] = httpx.Response(409, json={"error": "not assigned to i-test"})
    models.tick(agent.ctx)
    wait_for(lambda: api.reports(state_path("moved")))
    wait_for(lambda: not models.status()["loading"])
    assert models.running_work() == 0
