"""Workers and slots: PUT/GET/PATCH/DELETE /api/worker, /api/worker/{id}/circuits, /api/slots."""

from __future__ import annotations

import pytest

from tests.integration.appproxy.conftest import CIRCUIT_FIELDS, SLOT_FIELDS, WORKER_FIELDS, port_worker, wildcard_worker


def test_port_worker_registers_with_a_slot_per_port(register):
    worker = register(port_worker(first=20000, last=20009))
    assert set(worker) == WORKER_FIELDS
    assert worker["available_slots"] == 10 and worker["occupied_slots"] == 0 and worker["nodes"] == 1
    assert worker["port_range"] == [20000, 20009]
    assert [slot["port"] for slot in worker["slots"]] == list(range(20000, 20010))
    assert all(
        set(slot) == SLOT_FIELDS and not slot["in_use"] and slot["circuit_id"] is None for slot in worker["slots"]
    )


def test_wildcard_worker_has_unbounded_slots(register):
    worker = register(wildcard_worker())
    assert worker["available_slots"] == -1
    assert worker["slots"] == [] and worker["wildcard_domain"] == ".apps.example.com"


def test_reregistering_an_authority_counts_nodes_and_keeps_the_id(register):
    first = register(port_worker())
    second = register(port_worker(hostname="node-2.example", port_range=[20000, 20004]))
    assert second["id"] == first["id"]
    assert second["nodes"] == 2
    assert second["hostname"] == "node-2.example" and second["available_slots"] == 5


@pytest.mark.parametrize(
    "change",
    [
        {"protocol": "quic"},
        {"port_range": [0, 10]},
        {"port_range": [20010, 20000]},
        {"port_range": [65530, 65540]},
        {"port_range": None},
        {"frontend_mode": "subdomain"},
        {"api_port": 70000},
        {"app_filters": [{"key": "", "value": "blue"}]},
    ],
    ids=str,
)
def test_bad_worker_registration_is_refused_and_writes_nothing(client, as_worker, change):
    response = client.put("/api/worker", json=port_worker(**change), headers=as_worker)
    assert response.status_code == 400
    assert {"error", "code"} <= set(response.json())
    assert client.get("/api/worker", headers=as_worker).json() == {"workers": []}


def test_missing_authority_and_wildcard_without_domain_are_refused(client, as_worker):
    body = port_worker()
    del body["authority"]
    assert client.put("/api/worker", json=body, headers=as_worker).status_code == 400
    assert client.put("/api/worker", json=wildcard_worker(wildcard_domain=None), headers=as_worker).status_code == 400
    assert client.get("/api/worker", headers=as_worker).json() == {"workers": []}


def test_list_and_get_workers(client, as_worker, register):
    port = register(port_worker())
    wildcard = register(wildcard_worker())
    listed = client.get("/api/worker", headers=as_worker).json()["workers"]
    assert {worker["id"] for worker in listed} == {port["id"], wildcard["id"]}
    assert all(set(worker) == WORKER_FIELDS for worker in listed)
    assert client.get(f"/api/worker/{port['id']}", headers=as_worker).json()["authority"] == "proxy-port.example"
    missing = client.get("/api/worker/nope", headers=as_worker)
    assert missing.status_code == 404 and missing.json()["code"]


def test_heartbeat_revives_a_lost_worker(client, as_worker, register):
    from aiplane.appproxy.models import WorkerRecord
    from aiplane.appproxy.workers import get_worker

    worker = register(port_worker())
    get_worker(worker["id"]).update(actions=[WorkerRecord.lost.set(True), WorkerRecord.last_heartbeat_epoch.set(1)])
    response = client.patch(f"/api/worker/{worker['id']}", headers=as_worker)
    assert response.status_code == 200 and set(response.json()) == WORKER_FIELDS
    record = get_worker(worker["id"])
    assert record.lost is False and record.last_heartbeat_epoch > 1
    assert client.patch("/api/worker/nope", headers=as_worker).status_code == 404


def test_delete_drops_one_node_then_the_worker_and_its_circuits(client, as_worker, register, create_endpoint):
    worker = register(port_worker())
    register(port_worker())
    endpoint_id, created = create_endpoint()
    assert created.status_code == 200
    circuits = client.get(f"/api/worker/{worker['id']}/circuits", headers=as_worker).json()["circuits"]
    assert len(circuits) == 1 and set(circuits[0]) == CIRCUIT_FIELDS

    assert client.delete(f"/api/worker/{worker['id']}", headers=as_worker).json() == {"success": True}
    assert client.get(f"/api/worker/{worker['id']}", headers=as_worker).json()["nodes"] == 1

    assert client.delete(f"/api/worker/{worker['id']}", headers=as_worker).json() == {"success": True}
    assert client.get(f"/api/worker/{worker['id']}", headers=as_worker).status_code == 404
    assert client.get(f"/api/circuit/{circuits[0]['id']}", headers=as_worker).status_code == 404
    assert client.get(f"/api/worker/{worker['id']}/circuits", headers=as_worker).status_code == 404
    assert client.delete(f"/api/worker/{worker['id']}", headers=as_worker).status_code == 404


def test_slots_filter_by_host_and_use(client, as_worker, register, create_endpoint):
    register(port_worker(first=20000, last=20003))
    register(wildcard_worker())
    _, created = create_endpoint(port=20002)
    assert created.json()["endpoint"] == "http://proxy-port.example:20002"

    in_use = client.get("/api/slots", headers=as_worker).json()["slots"]
    assert in_use == [
        {
            "frontend_mode": "port",
            "in_use": True,
            "port": 20002,
            "subdomain": None,
            "circuit_id": in_use[0]["circuit_id"],
        }
    ]

    every_port = client.get(
        "/api/slots", params={"wsproxy_host": "proxy-port.example", "in_use": "false"}, headers=as_worker
    ).json()["slots"]
    assert [(slot["port"], slot["in_use"]) for slot in every_port] == [
        (20000, False),
        (20001, False),
        (20002, True),
        (20003, False),
    ]

    # The contract writes the filters as a body; both forms are accepted.
    by_body = client.request(
        "GET", "/api/slots", json={"wsproxy_host": "proxy-wildcard.example"}, headers=as_worker
    ).json()
    assert by_body == {"slots": []}
    assert client.get("/api/slots", params={"wsproxy_host": "unknown.example"}, headers=as_worker).status_code == 404


def test_a_worker_holding_circuits_cannot_change_its_frontend(client, as_worker, register, create_endpoint):
    register(port_worker(first=20000, last=20003))
    create_endpoint()
    response = client.put("/api/worker", json=port_worker(first=20000, last=20001), headers=as_worker)
    assert response.status_code == 409 and response.json()["code"]
    (worker,) = client.get("/api/worker", headers=as_worker).json()["workers"]
    assert worker["port_range"] == [20000, 20003] and worker["nodes"] == 1
