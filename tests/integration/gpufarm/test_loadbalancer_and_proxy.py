"""Agent registration and heartbeats feed the load endpoints; the proxy reaches loopback agents
by target or strategy, with a clear 502/504 when an agent fails."""

from __future__ import annotations

import time

import pytest

from aiplane.gpufarm.records import GpuAgentRecord
from tests.integration.gpufarm.conftest import AgentContract, new_user, running_contract
from tests.standins import LoopbackServer, StandInHandler


class LoopbackAgent(LoopbackServer):
    """A GPU agent's HTTP side: answers with its name, or sleeps first."""

    def __init__(self, name: str, delay_s: float = 0.0) -> None:
        self.name = name
        agent = self

        class Handler(StandInHandler):
            def do_POST(self):
                body = self.read_json()
                time.sleep(delay_s)
                self.send_json({"served_by": agent.name, "path": self.path, "payload": body})

        super().__init__(Handler)


@pytest.fixture
def no_agents():
    for record in GpuAgentRecord.all_agents.query("GPUAGENTS"):
        record.delete()
    yield
    for record in GpuAgentRecord.all_agents.query("GPUAGENTS"):
        record.delete()


def register(gpufarm, agent: AgentContract, url: str | None = None) -> None:
    response = gpufarm.post(
        "/api/v1/gpu/agents/register",
        headers=agent.auth,
        json={
            "instance_id": agent.instance_id,
            "url": url or agent.url,
            "gpus": [{"name": "A10G", "memory_mib": 22888}],
        },
    )
    assert response.status_code == 201, response.text


def beat(gpufarm, agent: AgentContract, connections: int, load: float, response_time_ms: float) -> None:
    response = gpufarm.post(
        "/api/v1/gpu/agents/heartbeat",
        headers=agent.auth,
        json={
            "instance_id": agent.instance_id,
            "connections": connections,
            "load": load,
            "response_time_ms": response_time_ms,
        },
    )
    assert response.status_code == 200, response.text


def set_strategy(gpufarm, auth, strategy: str) -> None:
    response = gpufarm.put("/api/v1/loadbalancer/strategy", json={"strategy": strategy}, headers=auth)
    assert response.status_code == 200
    assert response.json() == {"strategy": strategy, "message": "Load balancing strategy updated"}


def agent_at(user_id: str, listener: LoopbackAgent) -> AgentContract:
    return running_contract(user_id, agent_port=listener.port)


def test_heartbeats_feed_the_load_endpoints(gpufarm, auth, no_agents):
    owner_id, owner = new_user("owner")
    _, stranger = new_user("stranger")
    agent = running_contract(owner_id)
    register(gpufarm, agent)
    beat(gpufarm, agent, connections=15, load=0.65, response_time_ms=45)
    body = gpufarm.get("/api/v1/loadbalancer/loads", headers=owner).json()
    assert body["count"] == 1 and body["strategy"] in (
        "round_robin",
        "equal_weighted",
        "weighted_round_robin",
        "least_connections",
        "least_response_time",
    )
    loads = {
        "connections": 15,
        "load": 0.65,
        "response_time_ms": 45,
        "instance_id": agent.instance_id,
        "provider": "aws",
        "active_connections": 15,
        "total_connections": 0,
        "avg_response_time": 45,
        "weight": 1,
    }  # + AIServe.Farm's names
    assert body["loads"][agent.instance_id] == loads
    one = gpufarm.get("/api/v1/loadbalancer/load", params={"instance_id": agent.instance_id}, headers=owner)
    assert one.json() == loads
    # Another user's agent is not theirs to see; an admin sees every one.
    assert gpufarm.get("/api/v1/loadbalancer/loads", headers=stranger).json()["count"] == 0
    assert (
        gpufarm.get(
            "/api/v1/loadbalancer/load", params={"instance_id": agent.instance_id}, headers=stranger
        ).status_code
        == 404
    )
    assert agent.instance_id in gpufarm.get("/api/v1/loadbalancer/loads", headers=auth).json()["loads"]
    assert gpufarm.get("/api/v1/loadbalancer/load", params={"instance_id": "i-nope"}, headers=owner).status_code == 404
    assert gpufarm.get("/api/v1/loadbalancer/load", headers=owner).status_code == 400

    assert gpufarm.delete(f"/api/v1/gpu/agents/{agent.instance_id}", headers=agent.auth).status_code == 200
    assert gpufarm.get("/api/v1/loadbalancer/loads", headers=owner).json()["count"] == 0
    # Dropped out: a heartbeat answers 404, so the agent registers again.
    missing = gpufarm.post("/api/v1/gpu/agents/heartbeat", json={"instance_id": agent.instance_id}, headers=agent.auth)
    assert missing.status_code == 404


def test_agents_that_stop_heartbeating_drop_out(gpufarm, auth, no_agents):
    agent = running_contract(new_user("stale")[0])
    register(gpufarm, agent)
    GpuAgentRecord.get(GpuAgentRecord.key(agent.instance_id), "META").update(
        actions=[GpuAgentRecord.expires_at_epoch.set(int(time.time()) - 1)]
    )
    assert gpufarm.get("/api/v1/loadbalancer/loads", headers=auth).json()["count"] == 0


def test_strategy_get_put_and_validation(gpufarm, auth):
    set_strategy(gpufarm, auth, "least_connections")
    assert gpufarm.get("/api/v1/loadbalancer/strategy", headers=auth).json() == {"strategy": "least_connections"}
    response = gpufarm.put("/api/v1/loadbalancer/strategy", json={"strategy": "random"}, headers=auth)
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"
    assert gpufarm.put("/api/v1/loadbalancer/strategy", headers=auth).status_code == 400
    set_strategy(gpufarm, auth, "round_robin")


def test_only_an_admin_sets_the_strategy_and_the_weights(gpufarm, auth, no_agents):
    user_id, user = new_user("tinkerer")
    agent = running_contract(user_id)
    register(gpufarm, agent)
    refused = gpufarm.put("/api/v1/loadbalancer/strategy", json={"strategy": "least_connections"}, headers=user)
    assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
    assert gpufarm.get("/api/v1/loadbalancer/strategy", headers=user).json() == {"strategy": "round_robin"}
    path = f"/api/v1/loadbalancer/agents/{agent.instance_id}"
    assert gpufarm.put(path, json={"weight": 1000}, headers=user).status_code == 403
    assert gpufarm.put(path, json={"weight": 1000}, headers=agent.auth).status_code == 403
    # The weight starts at the instance type's GPU count (a g5.xlarge has one) and survives a restart.
    assert GpuAgentRecord.get(GpuAgentRecord.key(agent.instance_id), "META").weight == 1
    assert gpufarm.put(path, json={"weight": 4}, headers=auth).json() == {
        "instance_id": agent.instance_id,
        "shared": False,
        "weight": 4,
    }
    register(gpufarm, agent)
    assert GpuAgentRecord.get(GpuAgentRecord.key(agent.instance_id), "META").weight == 4
    assert gpufarm.put(path, json={"weight": 0}, headers=auth).status_code == 400
    assert gpufarm.put("/api/v1/loadbalancer/agents/i-none", json={"shared": True}, headers=auth).status_code == 404


def test_proxy_reaches_agents_by_target_and_by_strategy(gpufarm, auth, no_agents):
    owner_id, owner = new_user("prompter")
    fast_listener, busy_listener = LoopbackAgent("fast"), LoopbackAgent("busy")
    try:
        fast, busy = agent_at(owner_id, fast_listener), agent_at(owner_id, busy_listener)
        register(gpufarm, fast)
        register(gpufarm, busy)
        beat(gpufarm, fast, connections=1, load=0.1, response_time_ms=5)
        beat(gpufarm, busy, connections=20, load=0.9, response_time_ms=400)

        request = {
            "method": "POST",
            "target": busy.instance_id,
            "path": "/v1/inference",
            "payload": {"prompt": "Hello world"},
        }
        response = gpufarm.post("/api/v1/gpu/proxy", json=request, headers=owner)
        assert response.status_code == 200 and response.headers["x-gpu-instance"] == busy.instance_id
        assert response.json() == {"served_by": "busy", "path": "/v1/inference", "payload": {"prompt": "Hello world"}}

        set_strategy(gpufarm, auth, "least_connections")
        untargeted = {"method": "POST", "path": "/v1/inference", "payload": {}}
        served = {
            gpufarm.post("/api/v1/gpu/proxy", json=untargeted, headers=owner).json()["served_by"] for _ in range(3)
        }
        assert served == {"fast"}

        set_strategy(gpufarm, auth, "round_robin")
        served = [
            gpufarm.post("/api/v1/gpu/proxy", json=untargeted, headers=owner).json()["served_by"] for _ in range(4)
        ]
        assert sorted(served) == ["busy", "busy", "fast", "fast"]
    finally:
        fast_listener.stop()
        busy_listener.stop()


def test_proxy_failures_are_502_504_404_503(gpufarm, auth, no_agents):
    owner_id, owner = new_user("unlucky")
    slow_listener = LoopbackAgent("slow", delay_s=1.0)
    try:
        slow, down = agent_at(owner_id, slow_listener), running_contract(owner_id, agent_port=9)  # nothing on discard
        register(gpufarm, slow)
        register(gpufarm, down)
        timed_out = gpufarm.post(
            "/api/v1/gpu/proxy",
            headers=owner,
            json={"target": slow.instance_id, "path": "/v1/inference", "timeout_s": 0.2},
        )
        assert timed_out.status_code == 504 and "did not answer" in timed_out.json()["error"]
        unreachable = gpufarm.post(
            "/api/v1/gpu/proxy", headers=owner, json={"target": down.instance_id, "path": "/v1/x"}
        )
        assert unreachable.status_code == 502 and "unreachable" in unreachable.json()["error"]
        assert (
            gpufarm.post("/api/v1/gpu/proxy", headers=owner, json={"target": "i-none", "path": "/x"}).status_code == 404
        )
        assert (
            gpufarm.post(
                "/api/v1/gpu/proxy", headers=owner, json={"target": slow.instance_id, "path": "http://evil/x"}
            ).status_code
            == 400
        )
        assert (
            gpufarm.post("/api/v1/gpu/proxy", headers=owner, json={"method": "TRACE", "path": "/x"}).status_code == 400
        )
    finally:
        slow_listener.stop()
    for record in GpuAgentRecord.all_agents.query("GPUAGENTS"):
        record.delete()
    assert gpufarm.post("/api/v1/gpu/proxy", headers=owner, json={"path": "/v1/inference"}).status_code == 503


def test_preferences_round_trip_and_selection(gpufarm, auth):
    user_auth = auth
    fresh = gpufarm.get("/api/v1/gpu/preferences", headers=user_auth).json()
    assert set(fresh) >= {
        "id",
        "user_id",
        "preferred_vendors",
        "preferred_tiers",
        "min_vram",
        "max_price_per_hour",
        "priority",
        "is_default",
        "created_at",
    }
    saved = gpufarm.post(
        "/api/v1/gpu/preferences",
        headers=user_auth,
        json={
            "preferred_vendors": ["NVIDIA"],
            "preferred_tiers": ["high-end"],
            "min_vram": 24,
            "max_price_per_hour": 5.0,
            "priority": "performance",
        },
    )
    assert saved.status_code == 200
    assert saved.json()["message"] == "Preferences saved successfully" and saved.json()["id"]
    stored = gpufarm.get("/api/v1/gpu/preferences", headers=user_auth).json()
    assert stored["min_vram"] == 24 and stored["priority"] == "performance" and stored["is_default"] is False

    selection = gpufarm.post("/api/v1/gpu/preferences/test", headers=user_auth).json()
    best = selection["selected_gpu"]
    assert set(best) >= {"name", "vendor", "vram_gb", "tier", "score"}
    assert best["vram_gb"] >= 24 and best["vendor"] == "NVIDIA"
    scores = [best["score"]] + [alternative["score"] for alternative in selection["alternatives"]]
    assert scores == sorted(scores, reverse=True)
    assert all(gpu["vram_gb"] >= 24 for gpu in selection["alternatives"])
    assert any("below 24" in excluded["reason"] for excluded in selection["excluded"])

    # Cost first: the cheapest eligible model wins instead.
    cheap = gpufarm.post(
        "/api/v1/gpu/preferences/test",
        headers=user_auth,
        json={"priority": "cost", "preferred_tiers": [], "min_vram": 0, "max_price_per_hour": None},
    ).json()
    eligible = [cheap["selected_gpu"], *cheap["alternatives"]]
    assert cheap["selected_gpu"]["avg_price_per_hour"] == min(gpu["avg_price_per_hour"] for gpu in eligible)

    bad = gpufarm.post("/api/v1/gpu/preferences", headers=user_auth, json={"priority": "speed"})
    assert bad.status_code == 400
    assert (
        gpufarm.post("/api/v1/gpu/preferences", headers=user_auth, json={"max_price_per_hour": -1}).status_code == 400
    )
    assert (
        gpufarm.post("/api/v1/gpu/preferences", headers=user_auth, json={"preferred_tiers": ["ultra"]}).status_code
        == 400
    )
    assert gpufarm.get("/api/v1/gpu/preferences").status_code == 401


def test_agent_routes_need_credentials(gpufarm):
    assert (
        gpufarm.post("/api/v1/gpu/agents/register", json={"instance_id": "i-x", "url": "http://x"}).status_code == 401
    )
    assert gpufarm.post("/api/v1/gpu/agents/heartbeat", json={"instance_id": "i-x"}).status_code == 401
