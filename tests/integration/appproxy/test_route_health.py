"""Route health checks on a schedule: unhealthy after consecutive failures, no longer sent to the
workers, evicted after a timeout; kernels probed over loopback here (the local outbound policy)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis

from aiplane.appproxy.circuits import get_circuit, healthy_routes
from aiplane.appproxy.endpoints import endpoint_circuit_id
from aiplane.appproxy.route_health import check_routes
from aiplane_local.lambda_runtime import invoke
from aiplane_local.stack import free_port
from tests.integration.appproxy.conftest import endpoint_body, port_worker
from tests.integration.appproxy.test_scheduled import scheduled_tick
from tests.standins import LoopbackServer, StandInHandler


class Healthy(StandInHandler):
    def do_GET(self) -> None:
        self.send_body(200 if self.path == "/health" else 404, b"", content_type=None)


@pytest.fixture
def kernel():
    with LoopbackServer(Healthy) as server:
        yield server.port


def test_failing_routes_turn_unhealthy_leave_the_workers_and_are_evicted(
    client, as_manager, register, kernel, local_stack, set_setting
):
    set_setting("AIPLANE_APPPROXY_ROUTE_EVICT_AFTER_S", "60")
    register(port_worker(first=21500, last=21501))
    endpoint_id, good, bad = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    body = endpoint_body(
        vllm=[
            {"session_id": good, "kernel_host": "127.0.0.1", "kernel_port": kernel, "traffic_ratio": 0.7},
            {"session_id": bad, "kernel_host": "127.0.0.1", "kernel_port": free_port(), "traffic_ratio": 0.3},
        ]
    )
    body["health_check"] = {"path": "/health", "interval": 0, "max_retries": 2, "max_wait_time": 2}
    assert client.post(f"/v2/endpoints/{endpoint_id}", json=body, headers=as_manager).status_code == 200
    subscriber = redis.Redis.from_url(local_stack.redis_url).pubsub()
    subscriber.subscribe("events_all-appproxy")
    subscriber.get_message(timeout=2)

    now = time.time()
    for tick in range(2):  # two failures: not yet more than max_retries
        check_routes(now + tick)
    circuit = get_circuit(endpoint_circuit_id(endpoint_id))
    assert {route["session_id"]: route.get("health_status") for route in circuit.route_info} == {
        good: "healthy",
        bad: None,
    }
    assert len(healthy_routes(circuit)) == 2

    check_routes(now + 2)  # the third failure
    circuit = get_circuit(endpoint_circuit_id(endpoint_id))
    assert [route["session_id"] for route in healthy_routes(circuit)] == [good]
    message = subscriber.get_message(ignore_subscribe_messages=True, timeout=5)
    assert json.loads(message["data"])["name"] == "appproxy_circuit_route_updated_event"

    check_routes(now + 100)  # unhealthy past the eviction timeout
    circuit = get_circuit(endpoint_circuit_id(endpoint_id))
    assert [route["session_id"] for route in circuit.route_info] == [good]
    subscriber.close()


def test_circuits_without_a_health_check_are_not_probed_and_the_tick_runs(
    client, as_manager, register, create_endpoint
):
    register(port_worker(first=21600, last=21601))
    endpoint_id, _ = create_endpoint()
    assert invoke("appproxy_route_health", scheduled_tick()) == {"batchItemFailures": []}
    assert all(route.get("health_status") is None for route in get_circuit(endpoint_circuit_id(endpoint_id)).route_info)
