"""The original AIServe.Farm CLI (`cmd/client/main.go` of straticus1/aiserve-gpuproxyd) works
unchanged: every call it makes, replayed with its exact headers and bodies, succeeds, and its
answers decode the way its Go structs and map reads decode them.

The client sends `X-API-Key: <key>` and `Content-Type: application/json` on every request (GET and
DELETE included, without a body), and `X-Developer-Mode: true` with `-dv`. It names the
marketplaces `vast.ai` and `io.net`. Any answer of 400 or more is an error to it.
"""

from __future__ import annotations

import pytest

from aiplane.gpufarm.records import GpuAgentRecord
from aiplane.identity.api_keys import issue_api_key
from tests.integration.gpufarm.conftest import fund, new_user
from tests.integration.gpufarm.test_loadbalancer_and_proxy import LoopbackAgent, agent_at, register

IMAGE_CONFIG = {"image": "nvidia/cuda:12.0.0-base-ubuntu22.04"}
# `type GPUInstance struct` of the client: encoding/json refuses a field of another JSON type (an
# int field takes an integer literal only: `24.0` fails).
GO_GPU_INSTANCE = {
    "id": str,
    "provider": str,
    "gpu_name": str,
    "gpu_count": int,
    "vram_gb": int,
    "price_per_hour": float,
    "location": str,
    "available": bool,
}


def go_decodes(value: dict, struct: dict[str, type]) -> None:
    for name, kind in struct.items():
        if name not in value:
            continue  # a missing field is the zero value
        field = value[name]
        if kind is int:
            assert isinstance(field, int) and not isinstance(field, bool), (name, field)
        elif kind is float:
            assert isinstance(field, int | float) and not isinstance(field, bool), (name, field)
        else:
            assert isinstance(field, kind), (name, field)


class Cli:
    """`makeRequest` of the client: its headers on every call, >= 400 is a failure."""

    def __init__(self, gpufarm, api_key: str, developer_mode: bool = False) -> None:
        self.gpufarm = gpufarm
        self.headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
        if developer_mode:
            self.headers["X-Developer-Mode"] = "true"

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.gpufarm.request(method, path, headers=self.headers, json=body)
        assert response.status_code < 400, (method, path, response.status_code, response.text)
        answer = response.json()
        assert isinstance(answer, dict)  # every command unmarshals a JSON object
        return answer

    # The client's commands, call for call.
    def list(self, provider: str = "all") -> dict:
        answer = self.call("GET", f"/api/v1/gpu/instances?provider={provider}")
        assert isinstance(answer["count"], int)
        for instance in answer["instances"]:
            go_decodes(instance, GO_GPU_INSTANCE)
        return answer

    def create(self, provider: str, instance_id: str) -> dict:
        return self.call("POST", f"/api/v1/gpu/instances/{provider}/{instance_id}", IMAGE_CONFIG)

    def destroy(self, provider: str, instance_id: str) -> dict:
        return self.call("DELETE", f"/api/v1/gpu/instances/{provider}/{instance_id}")

    def proxy(self, protocol: str, target_url: str) -> dict:
        return self.call(
            "POST",
            "/api/v1/gpu/proxy",
            {
                "protocol": protocol,
                "target_url": target_url,
                "method": "POST",
                "headers": {"Content-Type": "application/json"},
            },
        )

    def reserve(self, count: int) -> dict:
        return self.call("POST", "/api/v1/gpu/instances/reserve", {"count": count, "config": IMAGE_CONFIG})

    def server_load(self) -> dict:
        return self.call("GET", "/api/v1/loadbalancer/loads")

    def provider_load(self) -> dict:
        answer = self.call("GET", "/api/v1/gpu/instances")
        for instance in answer["instances"]:
            go_decodes(instance, GO_GPU_INSTANCE)
        return answer

    def get_strategy(self) -> dict:
        return self.call("GET", "/api/v1/loadbalancer/strategy")

    def set_strategy(self, strategy: str) -> dict:
        return self.call("PUT", "/api/v1/loadbalancer/strategy", {"strategy": strategy})


@pytest.fixture
def agents():
    listeners: list[LoopbackAgent] = []
    yield listeners
    for listener in listeners:
        listener.stop()
    for record in GpuAgentRecord.all_agents.query("GPUAGENTS"):
        record.delete()


@pytest.mark.parametrize("developer_mode", [False, True])
def test_every_cli_command_succeeds(gpufarm, marketplaces, agents, admin_api_key, developer_mode):
    user_id, _ = new_user("cli")
    fund(user_id, 100)
    cli = Cli(gpufarm, issue_api_key(user_id, "cli").api_key, developer_mode)

    # list [provider]: all, and the marketplaces by the client's names
    everything = cli.list()
    assert {"vastai", "ionet", "aws"} <= {instance["provider"] for instance in everything["instances"]}
    vast = cli.list("vast.ai")
    assert {i["id"] for i in vast["instances"]} == {"1001", "1002"} and vast["provider"] == "vastai"
    assert vast["instances"][0]["gpu_name"] == vast["instances"][0]["gpu_model"]
    ionet = cli.list("io.net")
    assert [(i["id"], i["vram_gb"]) for i in ionet["instances"]] == [("io-h100-1", 80)]  # io.net says 80.0

    # create / destroy <provider> <instance-id>
    created = cli.create("vast.ai", "1001")
    assert created["contract_id"].startswith("contract_") and created["provider"] == "vastai"
    destroyed = cli.destroy("vast.ai", created["contract_id"])
    assert destroyed["message"] == "Instance destroyed successfully"

    # reserve <count>: the table it prints
    reserved = cli.reserve(2)
    assert reserved["count"] == 2
    for row in reserved["reserved"]:
        assert set(row) >= {"instance_id", "contract_id", "provider", "gpu_model", "vram", "price"}
        assert isinstance(row["price"], int | float) and isinstance(row["vram"], int | float)
    for row in reserved["reserved"]:
        cli.destroy(row["provider"], row["contract_id"])

    # proxy <protocol> <target-url>: the URL of one of the caller's own agents
    listener = LoopbackAgent("cli-agent")
    agents.append(listener)
    agent = agent_at(user_id, listener)
    register(gpufarm, agent)
    answer = cli.proxy("http", f"{listener.url}/v1/infer")
    assert answer == {"served_by": "cli-agent", "path": "/v1/infer", "payload": None}

    # load [all|server|provider]
    loads = cli.server_load()
    assert loads["count"] == 1 and isinstance(loads["strategy"], str)
    row = loads["loads"][agent.instance_id]
    assert (row["instance_id"], row["provider"], row["active_connections"], row["total_connections"]) == (
        agent.instance_id,
        "aws",
        0,
        1,
    )  # the one proxied request
    assert isinstance(row["avg_response_time"], int | float) and isinstance(row["weight"], int | float)
    assert cli.provider_load()["count"] == len(everything["instances"])

    # lb-strategy [strategy]: reading is anyone's, setting is an admin's
    assert cli.get_strategy()["strategy"]
    admin = Cli(gpufarm, admin_api_key, developer_mode)
    changed = admin.set_strategy("least_connections")
    assert changed["strategy"] == "least_connections" and changed["message"]
    admin.set_strategy("round_robin")


def test_proxy_by_target_url_is_refused_unless_it_is_the_callers_own_agent(gpufarm, agents, monkeypatch):
    """The original forwards any target_url (server-side request forgery): cloud metadata, other
    users' agents and internal services are refused before anything connects."""
    from aiplane import outbound

    def no_connection(*args, **kwargs):
        raise AssertionError("the proxy connected")

    monkeypatch.setattr(outbound, "request", no_connection)
    owner_id, _ = new_user("owner")
    mallory_id, _ = new_user("mallory")
    listener = LoopbackAgent("owners")
    agents.append(listener)
    register(gpufarm, agent_at(owner_id, listener))
    mallory = Cli(gpufarm, issue_api_key(mallory_id, "cli").api_key)
    for target_url in (
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        f"{listener.url}/v1/infer",  # someone else's agent
        "http://127.0.0.1:4566/",
        "file:///etc/passwd",
        "http://[::1",
    ):
        response = gpufarm.post(
            "/api/v1/gpu/proxy",
            headers=mallory.headers,
            json={"protocol": "http", "target_url": target_url, "method": "POST", "headers": {}},
        )
        assert response.status_code in (400, 403), (target_url, response.text)
        assert response.json()["details"]["field"] == "target_url"


def test_proxy_takes_one_shape_or_the_other(gpufarm):
    _, headers = new_user("shapes")
    both = gpufarm.post(
        "/api/v1/gpu/proxy",
        headers=headers,
        json={"target_url": "http://127.0.0.1:9/", "path": "/v1/infer", "method": "POST"},
    )
    assert both.status_code == 400
    neither = gpufarm.post("/api/v1/gpu/proxy", headers=headers, json={"method": "POST"})
    assert neither.status_code == 400


def test_x_api_key_and_bearer_are_the_same_key(gpufarm):
    _, bearer = new_user("both")
    key = bearer["Authorization"].removeprefix("Bearer ")
    assert gpufarm.get("/api/v1/quota", headers={"X-API-Key": key}).status_code == 200
    assert gpufarm.get("/api/v1/quota", headers=bearer).status_code == 200
    refused = gpufarm.get("/api/v1/quota", headers={"X-API-Key": "ak_forged"})
    assert refused.status_code == 401 and refused.json()["code"]
