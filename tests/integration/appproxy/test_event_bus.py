"""Backend.AI's event bus on the embedded Redis: circuit events as the upstream worker decodes
them (backend.ai-common 25.13.4 MessagePayload.from_broadcast), and the traffic counters it writes."""

from __future__ import annotations

import base64
import json
import time
import uuid

import msgpack
import pytest
import redis

from aiplane.appproxy.circuits import get_circuit
from aiplane.appproxy.models import CircuitRecord
from aiplane_local.lambda_runtime import invoke
from tests.integration.appproxy.test_scheduled import scheduled_tick
from tests.integration.appproxy.test_upstream_compat import WORKER_25_13

CHANNEL = "events_all-appproxy"  # appproxy-common 25.13.4 APPPROXY_BROADCAST_CHANNEL
LIVE_DB = 2  # backend.ai-common REDIS_LIVE_DB


@pytest.fixture
def bus(local_stack):
    subscriber = redis.Redis.from_url(local_stack.redis_url).pubsub()
    subscriber.subscribe(CHANNEL)
    assert subscriber.get_message(timeout=2)["type"] == "subscribe"

    def next_event() -> tuple[str, str, tuple]:
        message = subscriber.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None, "no event published"
        payload = json.loads(message["data"])
        return payload["name"], payload["source"], tuple(msgpack.unpackb(base64.b64decode(payload["args"])))

    yield next_event
    subscriber.close()


@pytest.fixture
def live(local_stack):
    return redis.Redis.from_url(local_stack.redis_url, db=LIVE_DB)


def test_created_updated_and_removed_reach_the_workers(client, as_worker, as_manager, bus, create_endpoint):
    authority = WORKER_25_13["register_port"]["authority"]
    client.put("/api/worker", json=WORKER_25_13["register_port"], headers=as_worker)
    endpoint_id, created = create_endpoint()
    assert created.status_code == 200

    name, source, (target, circuits) = bus()
    assert (name, source, target) == ("appproxy_circuit_created_event", "appproxy-coordinator", authority)
    (circuit,) = json.loads(circuits)
    assert circuit["endpoint_id"] == endpoint_id and circuit["port"] == int(
        created.json()["endpoint"].rsplit(":", 1)[1]
    )

    session_id = str(uuid.uuid4())
    apps = {"vllm": [{"session_id": session_id, "kernel_host": "10.0.0.6", "kernel_port": 8001, "traffic_ratio": 0.5}]}
    create_endpoint(endpoint_id, session_id=session_id, **apps)
    name, _, (target, updated, routes) = bus()
    assert (name, target) == ("appproxy_circuit_route_updated_event", authority)
    assert json.loads(updated)["id"] == circuit["id"]
    assert [(route["kernel_host"], route["traffic_ratio"]) for route in json.loads(routes)] == [("10.0.0.6", 0.5)]

    assert client.delete(f"/v2/endpoints/{endpoint_id}", headers=as_manager).status_code == 200
    name, _, (target, removed) = bus()
    assert (name, target) == ("appproxy_circuit_removed_event", authority)
    (gone,) = json.loads(removed)
    assert gone["id"] == circuit["id"] and set(gone) == set(circuit)


def test_interactive_apps_and_idle_collection_publish_too(client, as_worker, bus, open_app):
    client.put("/api/worker", json=WORKER_25_13["register_port"], headers=as_worker)
    assert open_app().status_code == 200
    name, _, (_, circuits) = bus()
    circuit_id = json.loads(circuits)[0]["id"]
    assert name == "appproxy_circuit_created_event"
    get_circuit(circuit_id).update(actions=[CircuitRecord.last_access.set(int(time.time()) - 7200)])
    invoke("appproxy_idle_circuits", scheduled_tick())
    name, _, (_, removed) = bus()
    assert name == "appproxy_circuit_removed_event" and json.loads(removed)[0]["id"] == circuit_id


def test_traffic_written_by_a_worker_keeps_its_circuit_past_the_ttl(client, as_worker, open_app, live, monkeypatch):
    worker = client.put("/api/worker", json=WORKER_25_13["register_port"], headers=as_worker).json()
    open_app()
    open_app()
    busy, quiet = (
        circuit["id"]
        for circuit in client.get(f"/api/worker/{worker['id']}/circuits", headers=as_worker).json()["circuits"]
    )
    long_ago = int(time.time()) - 7200
    for circuit_id in (busy, quiet):
        get_circuit(circuit_id).update(actions=[CircuitRecord.last_access.set(long_ago)])
    # What the worker's last_used_time_marker and request counter write (server.py, 25.13.4).
    live.set(f"circuit.{busy}.last_access", time.time(), ex=172800)
    for _ in range(3):
        live.incr(f"circuit.{busy}.requests")

    statistics = client.get(f"/api/circuit/{busy}/statistics", headers=as_worker).json()
    assert statistics["requests"] == 3 and statistics["ttl"] > 3500
    invoke("appproxy_idle_circuits", scheduled_tick())
    assert client.get(f"/api/circuit/{busy}", headers=as_worker).status_code == 200
    assert client.get(f"/api/circuit/{quiet}", headers=as_worker).status_code == 404


def test_a_redis_outage_never_fails_the_call(client, as_worker, create_endpoint, monkeypatch):
    from aiplane.appproxy import events

    monkeypatch.setattr(events, "redis_url", lambda: "redis://127.0.0.1:1")  # nothing listens there
    client.put("/api/worker", json=WORKER_25_13["register_port"], headers=as_worker)
    _, created = create_endpoint()
    assert created.status_code == 200
