"""Agents are who they say they are: each attack of issue 10 §2 replayed, and refused.

- registering an agent for another user's instance (and so blocking the real agent);
- registering an arbitrary URL (an SSRF through the proxy), refused before anything connects;
- a forged agent reporting load 0 to draw other users' untargeted requests;
- loads reported by anyone but the agent;
- the agent credential used anywhere but the agent routes, or after its contract ended.
"""

from __future__ import annotations

import socket

import boto3
import pytest

from aiplane.gpufarm import agent_credentials, contracts, provisioner
from aiplane.gpufarm.records import GpuAgentRecord
from aiplane_shared.families import GPUFARM, MLWORKER, RUNTIME
from aiplane_shared.routes import PUBLIC, contract_routes
from tests.integration.gpufarm.conftest import REGION, new_user, running_contract
from tests.integration.gpufarm.test_loadbalancer_and_proxy import LoopbackAgent, agent_at, beat, register, set_strategy
from tests.integration.test_contract_surface import assert_envelope, concrete


@pytest.fixture
def no_agents():
    for record in GpuAgentRecord.all_agents.query("GPUAGENTS"):
        record.delete()
    yield
    for record in GpuAgentRecord.all_agents.query("GPUAGENTS"):
        record.delete()


@pytest.fixture
def connections(monkeypatch) -> list[tuple]:
    """Every address this process connects to; anything but loopback fails the test."""
    seen: list[tuple] = []
    real_connect = socket.socket.connect

    def connect(self, address):
        seen.append(address)
        assert isinstance(address, tuple) and str(address[0]).startswith("127."), f"connected to {address}"
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


def test_a_user_cannot_register_an_agent_for_another_users_instance(gpufarm, no_agents):
    alice_id, _ = new_user("alice")
    mallory_id, mallory = new_user("mallory")
    alices, mallorys = running_contract(alice_id), running_contract(mallory_id)
    forged = {"instance_id": alices.instance_id, "url": alices.url}

    # With her own user key: agent routes take only a contract's agent credential.
    refused = gpufarm.post("/api/v1/gpu/agents/register", json=forged, headers=mallory)
    assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
    # With her own contract's agent credential: it speaks for her instance only.
    refused = gpufarm.post("/api/v1/gpu/agents/register", json=forged, headers=mallorys.auth)
    assert refused.status_code == 403 and "not the instance of" in refused.json()["error"]
    assert (
        gpufarm.post(
            "/api/v1/gpu/agents/heartbeat", json={"instance_id": alices.instance_id, "load": 0}, headers=mallorys.auth
        ).status_code
        == 403
    )

    # The real agent is not blocked, and only it reports its loads or deregisters it.
    register(gpufarm, alices)
    beat(gpufarm, alices, connections=3, load=0.5, response_time_ms=20)
    assert (
        gpufarm.post(
            "/api/v1/gpu/agents/heartbeat", json={"instance_id": alices.instance_id, "connections": 0}, headers=mallory
        ).status_code
        == 403
    )
    assert gpufarm.delete(f"/api/v1/gpu/agents/{alices.instance_id}", headers=mallorys.auth).status_code == 403
    record = GpuAgentRecord.get(GpuAgentRecord.key(alices.instance_id), "META")
    assert (record.owner_id, record.contract_id, record.url, int(record.connections)) == (
        alice_id,
        alices.contract_id,
        alices.url,
        3,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # instance metadata
        "http://evil.example:8787",
        "http://127.0.0.1:{other_port}",  # loopback, but another instance's agent port
        "http://127.0.0.1:{port}/admin",  # the right address with a path on it
        "http://user@127.0.0.1:{port}",
        "ftp://127.0.0.1:{port}",
    ],
)
def test_an_agent_url_other_than_the_instances_address_is_refused_before_any_connection(
    gpufarm, no_agents, connections, url
):
    decoy = LoopbackAgent("decoy")
    try:
        owner_id, owner = new_user("ssrf")
        agent = running_contract(owner_id, agent_port=8787)
        url = url.format(port=8787, other_port=decoy.server.server_address[1])
        refused = gpufarm.post(
            "/api/v1/gpu/agents/register", headers=agent.auth, json={"instance_id": agent.instance_id, "url": url}
        )
        assert refused.status_code == 400 and refused.json()["code"] == "VALIDATION_ERROR", refused.text
        assert refused.json()["details"]["field"] == "url"
        # Nothing registered, so the proxy has nowhere to send a request.
        proxied = gpufarm.post("/api/v1/gpu/proxy", headers=owner, json={"target": agent.instance_id, "path": "/"})
        assert proxied.status_code == 404
        assert decoy.server.server_address not in connections and all(port != 8787 for _, port in connections)
    finally:
        decoy.stop()


def test_the_address_is_the_private_ip_ec2_reports_outside_the_local_stack(monkeypatch):
    from aiplane import settings
    from aiplane.gpufarm import loadbalancer

    agent = running_contract(new_user("cloud")[0])
    private_ip = boto3.client("ec2", region_name=REGION).describe_instances(InstanceIds=[agent.instance_id])[
        "Reservations"
    ][0]["Instances"][0]["PrivateIpAddress"]
    cloud = settings.get_settings().model_copy(update={"gpu_agent_address_tag": None})
    monkeypatch.setattr(loadbalancer, "get_settings", lambda: cloud)
    assert loadbalancer.agent_address(contracts.get_contract(agent.contract_id)) == (private_ip, None)


def test_a_forged_agent_reporting_no_load_gets_no_other_users_requests(gpufarm, auth, no_agents):
    alice_id, alice = new_user("alice")
    mallory_id, mallory = new_user("mallory")
    alices_listener, mallorys_listener = LoopbackAgent("alice's"), LoopbackAgent("mallory's")
    try:
        alices, mallorys = agent_at(alice_id, alices_listener), agent_at(mallory_id, mallorys_listener)
        register(gpufarm, alices)
        register(gpufarm, mallorys)
        beat(gpufarm, alices, connections=20, load=0.9, response_time_ms=400)
        beat(gpufarm, mallorys, connections=0, load=0, response_time_ms=0)
        set_strategy(gpufarm, auth, "least_connections")
        prompt = {"method": "POST", "path": "/v1/inference", "payload": {"prompt": "alice's secret"}}
        served = {gpufarm.post("/api/v1/gpu/proxy", json=prompt, headers=alice).json()["served_by"] for _ in range(3)}
        assert served == {"alice's"}
        # An admin's untargeted requests stay off users' instances too.
        assert gpufarm.post("/api/v1/gpu/proxy", json=prompt, headers=auth).status_code == 503
        # Mallory cannot target Alice's agent either.
        targeted = gpufarm.post("/api/v1/gpu/proxy", headers=mallory, json={**prompt, "target": alices.instance_id})
        assert targeted.status_code == 404

        # Once an admin shares an agent, every user's untargeted requests may reach it.
        shared = gpufarm.put(f"/api/v1/loadbalancer/agents/{alices.instance_id}", json={"shared": True}, headers=auth)
        assert shared.status_code == 200 and shared.json()["shared"] is True
        set_strategy(gpufarm, auth, "round_robin")
        served = {gpufarm.post("/api/v1/gpu/proxy", json=prompt, headers=mallory).json()["served_by"] for _ in range(4)}
        assert served == {"alice's", "mallory's"}
        assert {
            gpufarm.post("/api/v1/gpu/proxy", json=prompt, headers=alice).json()["served_by"] for _ in range(4)
        } == {"alice's"}
    finally:
        set_strategy(gpufarm, auth, "round_robin")
        alices_listener.stop()
        mallorys_listener.stop()


AUTHENTICATED_ROUTES = [r for r in contract_routes() if r.access != PUBLIC and r.family in (RUNTIME, GPUFARM, MLWORKER)]
FIRST_OF_GROUP = list({(r.family, r.group): r for r in reversed(AUTHENTICATED_ROUTES)}.values())


def agent_headers(family: str, credential: dict[str, str]) -> dict[str, str]:
    key = credential["Authorization"].removeprefix("Bearer ")
    return {"Authorization": f"Bearer {key}"} if family == GPUFARM else {"X-API-Key": key}


def test_the_agent_credential_is_refused_on_every_other_route(family_clients):
    agent = running_contract(new_user("scoped")[0])
    for route in FIRST_OF_GROUP:  # the check is one dependency per app: one route per deployed function
        response = family_clients[route.family].request(
            route.method, concrete(route.path), headers=agent_headers(route.family, agent.auth)
        )
        assert response.status_code == 403, (route, response.text)
        assert_envelope(route.family, response.json())
    gpufarm = family_clients[GPUFARM]
    assert gpufarm.post("/api/v1/gpu/instances/batch", json={"aws_count": 1}, headers=agent.auth).status_code == 403
    assert (
        gpufarm.put("/api/v1/loadbalancer/strategy", json={"strategy": "round_robin"}, headers=agent.auth).status_code
        == 403
    )


def test_the_agent_credential_ends_with_its_contract(gpufarm, no_agents):
    owner_id, owner = new_user("leaving")
    agent = running_contract(owner_id)
    register(gpufarm, agent)
    record = contracts.get_contract(agent.contract_id)
    agent_credentials.publish(agent.contract_id, agent.auth["Authorization"].removeprefix("Bearer "), agent.instance_id)
    ssm = boto3.client("ssm", region_name=REGION)

    assert gpufarm.delete(f"/api/v1/gpu/instances/aws/{agent.contract_id}", headers=owner).status_code == 200
    # Terminating: no new registration or loads, but the agent may still deregister as it stops.
    assert (
        gpufarm.post(
            "/api/v1/gpu/agents/register", headers=agent.auth, json={"instance_id": agent.instance_id, "url": agent.url}
        ).status_code
        == 403
    )
    assert gpufarm.delete(f"/api/v1/gpu/agents/{agent.instance_id}", headers=agent.auth).status_code == 200

    provisioner.on_ec2_state_change(agent.instance_id, "terminated")
    assert contracts.get_contract(agent.contract_id).status == "terminated"
    for call in (
        lambda: gpufarm.post(
            "/api/v1/gpu/agents/register", headers=agent.auth, json={"instance_id": agent.instance_id, "url": agent.url}
        ),
        lambda: gpufarm.post(
            "/api/v1/gpu/agents/heartbeat", headers=agent.auth, json={"instance_id": agent.instance_id}
        ),
    ):
        response = call()
        assert response.status_code == 401 and response.json()["code"] == "AUTH_INVALID", response.text
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=agent_credentials.parameter_name(record.contract_id))
