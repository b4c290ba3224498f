"""Inference endpoints (/v2/endpoints/...), their API tokens, and circuits (/api/circuit/...)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from aiplane.errors import InvalidCredentialsError
from aiplane.identity.tokens import verify_token
from tests.integration.appproxy.conftest import CIRCUIT_FIELDS, endpoint_body, port_worker

STATISTICS_FIELDS = CIRCUIT_FIELDS | {"requests", "last_access", "ttl"}


def endpoint_circuit(client, as_worker, worker_id: str) -> dict:
    (circuit,) = client.get(f"/api/worker/{worker_id}/circuits", headers=as_worker).json()["circuits"]
    return circuit


def test_endpoint_create_then_update_keeps_its_slot(client, as_worker, as_manager, register, create_endpoint):
    worker = register(port_worker())
    endpoint_id, created = create_endpoint(
        vllm=[
            {"session_id": "s-1", "kernel_host": "10.0.0.5", "kernel_port": 8000, "traffic_ratio": 0.7},
            {"session_id": "s-2", "kernel_host": "10.0.0.6", "kernel_port": 8000, "traffic_ratio": 0.3},
        ]
    )
    assert created.status_code == 200 and set(created.json()) == {"endpoint"}
    circuit = endpoint_circuit(client, as_worker, worker["id"])
    assert created.json()["endpoint"] == f"http://proxy-port.example:{circuit['port']}"
    assert circuit["app_mode"] == "inference" and circuit["endpoint_id"] == endpoint_id and circuit["app"] == "vllm"
    assert [route["traffic_ratio"] for route in circuit["route_info"]] == [0.7, 0.3]
    assert circuit["session_ids"] == ["s-1", "s-2"]

    updated = client.post(
        f"/v2/endpoints/{endpoint_id}",
        headers=as_manager,
        json=endpoint_body(vllm=[{"session_id": "s-3", "kernel_host": "10.0.0.7", "kernel_port": 8001}]),
    )
    assert updated.json() == created.json()
    after = endpoint_circuit(client, as_worker, worker["id"])
    assert after["id"] == circuit["id"] and after["session_ids"] == ["s-3"]
    assert after["route_info"][0]["traffic_ratio"] == 1.0
    assert client.get(f"/api/worker/{worker['id']}", headers=as_worker).json()["occupied_slots"] == 1


def test_endpoint_bad_input_writes_nothing(client, as_worker, as_manager, register):
    worker = register(port_worker())
    bad = endpoint_body(vllm=[{"session_id": "s", "kernel_host": "h", "kernel_port": 1, "protocol": "quic"}])
    assert client.post(f"/v2/endpoints/{uuid.uuid4()}", json=bad, headers=as_manager).status_code == 400
    assert (
        client.post(f"/v2/endpoints/{uuid.uuid4()}", json={"service_name": "x"}, headers=as_manager).status_code == 400
    )
    assert client.post(f"/v2/endpoints/{uuid.uuid4()}", json=endpoint_body(), headers=as_worker).status_code == 403
    assert client.get(f"/api/worker/{worker['id']}/circuits", headers=as_worker).json() == {"circuits": []}


def test_endpoint_delete_frees_the_slot(client, as_worker, as_manager, register, create_endpoint):
    worker = register(port_worker())
    endpoint_id, _ = create_endpoint()
    assert client.delete(f"/v2/endpoints/{endpoint_id}", headers=as_manager).json() == {"success": True}
    assert client.get(f"/api/worker/{worker['id']}", headers=as_worker).json()["occupied_slots"] == 0
    assert client.delete(f"/v2/endpoints/{endpoint_id}", headers=as_manager).status_code == 404


def test_endpoint_token_is_an_hs256_jwt_bound_to_the_circuit(
    client, as_worker, as_manager, register, create_endpoint, worker_jwt_secret
):
    import jwt

    worker = register(port_worker())
    endpoint_id, _ = create_endpoint()
    circuit = endpoint_circuit(client, as_worker, worker["id"])
    expires = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    response = client.post(
        f"/v2/endpoints/{endpoint_id}/token", json={"user_uuid": "u-42", "exp": expires.isoformat()}, headers=as_manager
    )
    assert response.status_code == 200 and set(response.json()) == {"token"}
    token = response.json()["token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    # What the upstream worker checks: HS256 with its jwt_secret, `id` == the circuit's id.
    claims = jwt.decode(token, worker_jwt_secret, algorithms=["HS256"])
    assert claims["id"] == circuit["id"] and claims["endpoint_id"] == endpoint_id
    assert claims["user"] == "u-42" and claims["exp"] == int(expires.timestamp())
    assert claims["app_url"].startswith("http://proxy-port.example:") and claims["config"] == {}

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), worker_jwt_secret, algorithms=["HS256"])
    with pytest.raises(InvalidCredentialsError):  # the worker secret is no user-token key: never a user credential
        verify_token(token, token_type="access")

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert (
        client.post(
            f"/v2/endpoints/{endpoint_id}/token", json={"user_uuid": "u", "exp": past}, headers=as_manager
        ).status_code
        == 400
    )
    assert (
        client.post(
            f"/v2/endpoints/{uuid.uuid4()}/token",
            json={"user_uuid": "u", "exp": expires.isoformat()},
            headers=as_manager,
        ).status_code
        == 404
    )


def test_circuit_get_statistics_and_delete(client, as_worker, register, open_app):
    worker = register(port_worker())
    assert open_app().status_code == 200
    circuit_id = client.get(f"/api/worker/{worker['id']}/circuits", headers=as_worker).json()["circuits"][0]["id"]

    circuit = client.get(f"/api/circuit/{circuit_id}", headers=as_worker).json()
    assert set(circuit) == CIRCUIT_FIELDS and circuit["id"] == circuit_id and circuit["worker"] == worker["id"]
    statistics = client.get(f"/api/circuit/{circuit_id}/statistics", headers=as_worker).json()
    assert set(statistics) == STATISTICS_FIELDS
    assert statistics["requests"] == 0 and statistics["last_access"] is None and 3590 <= statistics["ttl"] <= 3600

    assert client.delete(f"/api/circuit/{circuit_id}", headers=as_worker).json() == {"success": True}
    for path in (f"/api/circuit/{circuit_id}", f"/api/circuit/{circuit_id}/statistics"):
        assert client.get(path, headers=as_worker).status_code == 404
    assert client.delete(f"/api/circuit/{circuit_id}", headers=as_worker).status_code == 404


def test_inference_statistics_have_no_ttl(client, as_worker, register, create_endpoint):
    worker = register(port_worker())
    create_endpoint()
    circuit = endpoint_circuit(client, as_worker, worker["id"])
    assert client.get(f"/api/circuit/{circuit['id']}/statistics", headers=as_worker).json()["ttl"] is None


def test_bulk_delete_is_all_or_nothing(client, as_worker, register, open_app):
    worker = register(port_worker())
    for _ in range(3):
        open_app()
    ids = [
        circuit["id"]
        for circuit in client.get(f"/api/worker/{worker['id']}/circuits", headers=as_worker).json()["circuits"]
    ]
    assert len(ids) == 3

    refused = client.request(
        "DELETE", "/api/circuit/_/bulk", json={"circuit_ids": [ids[0], "unknown"]}, headers=as_worker
    )
    assert refused.status_code == 404
    assert client.get(f"/api/circuit/{ids[0]}", headers=as_worker).status_code == 200

    done = client.request("DELETE", "/api/circuit/_/bulk", json={"circuit_ids": ids[:2]}, headers=as_worker)
    assert done.json() == {"success": True}
    remaining = client.get(f"/api/worker/{worker['id']}", headers=as_worker).json()
    assert remaining["occupied_slots"] == 1
    assert [slot["circuit_id"] for slot in remaining["slots"] if slot["in_use"]] == [ids[2]]
