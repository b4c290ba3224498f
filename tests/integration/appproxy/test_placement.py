"""Placement and slot accounting across port and wildcard workers, and the race for slots."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from aiplane.appproxy.models import WorkerRecord
from aiplane.appproxy.workers import get_worker
from tests.integration.appproxy.conftest import endpoint_body, port_worker, wildcard_worker


def occupied(client, headers, worker_id: str) -> int:
    return client.get(f"/api/worker/{worker_id}", headers=headers).json()["occupied_slots"]


def test_port_and_wildcard_slot_accounting(client, as_worker, as_manager, register, create_endpoint):
    port = register(port_worker(first=20200, last=20201))
    wildcard = register(wildcard_worker())
    # Upstream's order puts the wildcard worker first; a preferred port goes to a port worker.
    _, on_wildcard = create_endpoint()
    _, on_port = create_endpoint(port=20201)
    assert on_wildcard.json()["endpoint"].startswith("https://vllm-")
    assert on_port.json()["endpoint"] == "http://proxy-port.example:20201"
    assert occupied(client, as_worker, port["id"]) == 1 and occupied(client, as_worker, wildcard["id"]) == 1

    status = client.get("/health/status", headers=as_manager).json()["workers"]
    assert {"authority": "proxy-port.example", "available_slots": 2, "occupied_slots": 1, "ha_setup": False} in status
    assert {
        "authority": "proxy-wildcard.example",
        "available_slots": -1,
        "occupied_slots": 1,
        "ha_setup": False,
    } in status

    wildcard_slots = client.get(f"/api/worker/{wildcard['id']}", headers=as_worker).json()["slots"]
    assert (
        len(wildcard_slots) == 1 and wildcard_slots[0]["subdomain"].startswith("vllm-") and wildcard_slots[0]["in_use"]
    )

    circuit_id = wildcard_slots[0]["circuit_id"]
    assert client.delete(f"/api/circuit/{circuit_id}", headers=as_worker).json() == {"success": True}
    assert occupied(client, as_worker, wildcard["id"]) == 0
    assert client.get(f"/api/worker/{wildcard['id']}", headers=as_worker).json()["slots"] == []


def test_upstream_order_fills_the_fullest_port_worker_first(register, create_endpoint):
    register(port_worker("small.example", first=20300, last=20301))
    register(port_worker("large.example", first=20400, last=20404))
    _, response = create_endpoint()
    assert response.json()["endpoint"].startswith("http://small.example:203")
    create_endpoint()
    _, spilled = create_endpoint()  # small.example is full now
    assert spilled.json()["endpoint"].startswith("http://large.example:204")


def test_traffic_type_protocol_and_app_filters_decide_eligibility(
    client, as_manager, register, create_endpoint, open_app
):
    register(port_worker("interactive-only.example", first=20500, last=20509, accepted_traffics=["interactive"]))
    register(port_worker("grpc.example", first=20600, last=20609, protocol="grpc"))
    register(
        port_worker(
            "filtered.example",
            first=20700,
            last=20701,
            filtered_apps_only=True,
            app_filters=[{"key": "session.domain_name", "value": "special"}],
        )
    )
    # Inference over http: neither the interactive-only worker nor the grpc one; the filtered one
    # only takes the circuits its filter matches (upstream's `session.<field>` names).
    _, refused = create_endpoint()
    assert refused.status_code == 503
    _, special = create_endpoint(domain_name="special")
    assert special.json()["endpoint"].startswith("http://filtered.example:207")
    grpc_app = [{"session_id": "s-2", "kernel_host": "10.0.0.9", "kernel_port": 9000, "protocol": "grpc"}]
    _, grpc = create_endpoint(triton=grpc_app)
    assert grpc.json()["endpoint"].startswith("http://grpc.example:206")
    assert open_app(app="jupyter").json()["redirect_url"].startswith("http://interactive-only.example:6001/setup")


def test_lost_workers_get_no_new_circuits(register, create_endpoint):
    worker = register(port_worker())
    get_worker(worker["id"]).update(actions=[WorkerRecord.lost.set(True)])
    _, response = create_endpoint()
    assert response.status_code == 503 and response.json()["code"]


def test_preferred_port_and_subdomain(client, as_worker, register, create_endpoint):
    register(port_worker(first=20800, last=20803))
    _, first = create_endpoint(port=20802)
    _, taken = create_endpoint(port=20802)
    assert first.json()["endpoint"] == "http://proxy-port.example:20802"
    assert taken.status_code == 409 and "20802" in taken.json()["error"]  # refused, not silently replaced
    _, outside = create_endpoint(port=30000)
    assert outside.status_code == 400 and outside.json()["code"]

    register(wildcard_worker())
    _, named = create_endpoint(subdomain="chat")
    _, clash = create_endpoint(subdomain="chat")
    assert named.json()["endpoint"] == "https://chat.apps.example.com"
    assert clash.status_code == 200 and clash.json()["endpoint"] != "https://chat.apps.example.com"


def test_wildcard_endpoint_urls_carry_the_wildcard_traffic_port(register, create_endpoint):
    register(wildcard_worker(wildcard_traffic_port=8443))
    _, created = create_endpoint(subdomain="llm")
    assert created.json()["endpoint"] == "https://llm.apps.example.com:8443"


def test_create_or_update_moves_the_circuit_to_a_new_port_and_protocol(client, as_worker, register, create_endpoint):
    register(port_worker(first=20850, last=20853))
    endpoint_id, first = create_endpoint(port=20850)
    assert first.json()["endpoint"] == "http://proxy-port.example:20850"
    _, moved = create_endpoint(endpoint_id, port=20852)
    assert moved.status_code == 200 and moved.json()["endpoint"] == "http://proxy-port.example:20852"
    register(port_worker("grpc.example", first=20860, last=20861, protocol="grpc"))
    grpc = [{"session_id": str(uuid.uuid4()), "kernel_host": "10.0.0.9", "kernel_port": 9000, "protocol": "grpc"}]
    _, regrpc = create_endpoint(endpoint_id, triton=grpc)
    assert regrpc.status_code == 200 and regrpc.json()["endpoint"].startswith("http://grpc.example:2086")
    _, other = create_endpoint(port=20851)
    _, refused = create_endpoint(
        endpoint_id, port=20851, triton=grpc
    )  # taken: 409, and the endpoint stays where it was
    assert refused.status_code in (400, 409)
    circuits = client.get("/api/worker", headers=as_worker).json()["workers"]
    assert sum(worker["occupied_slots"] for worker in circuits) == 2


def test_full_worker_refuses_clearly(register, create_endpoint):
    register(port_worker(first=20900, last=20900))
    assert create_endpoint()[1].status_code == 200
    refused = create_endpoint()[1]
    assert refused.status_code == 503
    assert refused.json()["code"] and "slot" in refused.json()["error"]


def test_twenty_concurrent_creations_on_ten_ports(client, as_worker, as_manager, register):
    worker = register(port_worker(first=21000, last=21009))

    def create(_: int):
        endpoint_id = str(uuid.uuid4())
        return client.post(f"/v2/endpoints/{endpoint_id}", json=endpoint_body(), headers=as_manager)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(create, range(20)))

    created = [response for response in responses if response.status_code == 200]
    refused = [response for response in responses if response.status_code != 200]
    assert len(created) == 10 and len(refused) == 10
    assert all(response.status_code == 503 and response.json()["code"] for response in refused)
    urls = {response.json()["endpoint"] for response in created}
    assert urls == {f"http://proxy-port.example:{port}" for port in range(21000, 21010)}

    state = client.get(f"/api/worker/{worker['id']}", headers=as_worker).json()
    assert state["occupied_slots"] == 10
    held = [slot["circuit_id"] for slot in state["slots"] if slot["in_use"]]
    assert len(held) == 10 and len(set(held)) == 10
    assert len(client.get(f"/api/worker/{worker['id']}/circuits", headers=as_worker).json()["circuits"]) == 10


def test_a_subdomain_must_be_a_dns_label(register, create_endpoint):
    register(wildcard_worker())
    _, response = create_endpoint(subdomain="not a.label")
    assert response.status_code == 400


def test_concurrent_requests_for_one_subdomain_get_one_each(client, as_worker, as_manager, register):
    worker = register(wildcard_worker())

    def create(_: int):
        return client.post(f"/v2/endpoints/{uuid.uuid4()}", json=endpoint_body(subdomain="chat"), headers=as_manager)

    with ThreadPoolExecutor(max_workers=10) as pool:
        urls = [response.json()["endpoint"] for response in pool.map(create, range(10))]

    assert len(set(urls)) == 10 and urls.count("https://chat.apps.example.com") == 1
    state = client.get(f"/api/worker/{worker['id']}", headers=as_worker).json()
    assert state["occupied_slots"] == 10 and len({slot["subdomain"] for slot in state["slots"]}) == 10
