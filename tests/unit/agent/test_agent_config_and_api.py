"""The agent's one configuration and its one API client (each family's credential header)."""

from __future__ import annotations

import json

import httpx
import pytest
from aiplane_agent.api import ApiError, ControlPlane
from aiplane_agent.components import HttpRequest, HttpResponse, Route
from aiplane_agent.config import parse_args


def test_environment_and_flags(monkeypatch, tmp_path):
    monkeypatch.setenv("AIPLANE_AGENT_CREDENTIAL", "cred")
    monkeypatch.setenv("AIPLANE_MLWORKER_URL", "https://ml.example/prod/")
    monkeypatch.setenv("AIPLANE_AGENT_GPUS", "4")
    config = parse_args(["--state-dir", str(tmp_path), "--runner", "process"])
    assert (config.credential, config.mlworker_url, config.gpufarm_url, config.gpus, config.runner) == (
        "cred",
        "https://ml.example/prod",
        None,
        "4",
        "process",
    )
    monkeypatch.delenv("AIPLANE_MLWORKER_URL")
    with pytest.raises(SystemExit):
        parse_args(["--credential", "c"])  # no API at all
    with pytest.raises(SystemExit):
        parse_args(["--credential", "c", "--mlworker-url", "http://x", "--gpus", "many"])


def test_a_host_told_to_require_containers_refuses_the_process_runner(monkeypatch):
    monkeypatch.setenv("AIPLANE_AGENT_REQUIRE_CONTAINER", "true")
    required = ["--credential", "c", "--mlworker-url", "http://x"]
    assert parse_args(required).require_container
    with pytest.raises(SystemExit):
        parse_args([*required, "--runner", "process"])
    # Only a harness standing in for the instance (no docker) says otherwise on the command line.
    assert not parse_args([*required, "--no-require-container", "--runner", "process"]).require_container


def test_only_an_agent_told_to_be_shared_asks_for_it_at_registration():
    bodies = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"id": "w-1"})

    for flags in ([], ["--shared"]):
        config = parse_args(["--credential", "k", "--mlworker-url", "http://127.0.0.1:1/mlworker", *flags])
        ControlPlane(config, transport=httpx.MockTransport(answer)).register_worker("w-1", {"gpu_count": 0}, 0)
    assert "shared" not in bodies[0] and bodies[1]["shared"] is True


def test_each_family_gets_its_credential_header_and_errors_raise():
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("authorization"), request.headers.get("x-api-key")))
        if request.url.path.endswith("/lease"):
            return httpx.Response(204)
        if request.url.path.endswith("/state"):
            return httpx.Response(409, json={"error": "stale", "code": "CONFLICT"})
        return httpx.Response(200, json={"ok": True})

    config = parse_args(
        [
            "--credential",
            "k",
            "--api-url",
            "http://127.0.0.1:1/gpufarm",
            "--mlworker-url",
            "http://127.0.0.1:1/mlworker",
        ]
    )
    api = ControlPlane(config, transport=httpx.MockTransport(answer))
    api.gpufarm_heartbeat("i-1", {"load": 0})
    assert api.lease("w-1") is None
    with pytest.raises(ApiError) as refused:
        api.report_task("t-1", {"status": "running"})
    assert refused.value.status_code == 409
    assert seen[0] == ("/gpufarm/api/v1/gpu/agents/heartbeat", "Bearer k", None)
    assert seen[1] == ("/mlworker/v1/scheduler/workers/w-1/lease", None, "k")


def test_route_templates_match_path_parameters():
    route = Route("POST", "/models/{model_id}/predict", lambda request: HttpResponse.of_json(200, request.path_params))
    assert route.match("POST", "/models/m-1/predict") == {"model_id": "m-1"}
    assert route.match("GET", "/models/m-1/predict") is None and route.match("POST", "/models/a/b/predict") is None
    request = HttpRequest("POST", "/models/m-1/predict", {}, {}, b"{}", {"model_id": "m-1"})
    assert json.loads(route.handler(request).body) == {"model_id": "m-1"}
