"""Replays the calls of the real Backend.AI packages with their bodies (fixtures under
`upstream/`, each naming the package version it was transcribed from)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

UPSTREAM = Path(__file__).with_name("upstream")
WORKER_25_13 = json.loads((UPSTREAM / "worker-25.13.4.json").read_text())
CONTRACT_24_03 = json.loads((UPSTREAM / "coordinator-24.03-contract.json").read_text())
MANAGER_24_3 = json.loads((UPSTREAM / "manager-24.3.11.json").read_text())

PROTOCOLS = {"http", "grpc", "h2", "tcp", "preopen"}
ROUTE_FIELDS = {
    "route_id",
    "session_id",
    "session_name",
    "kernel_host",
    "kernel_port",
    "protocol",
    "traffic_ratio",
    "health_status",
    "last_health_check",
    "consecutive_failures",
}


def assert_upstream_circuit(circuit: dict[str, Any]) -> None:
    """What the worker's SerializableCircuit(**body) needs (appproxy-common 25.13.4)."""
    uuid.UUID(circuit["id"]), uuid.UUID(circuit["worker"])
    assert circuit["protocol"] in PROTOCOLS and circuit["app_mode"] in {"interactive", "inference"}
    assert circuit["frontend_mode"] in {"port", "wildcard"} and isinstance(circuit["envs"], dict)
    assert isinstance(circuit["open_to_public"], bool) and "runtime_variant" in circuit
    for name in ("user_id", "endpoint_id"):
        assert circuit[name] is None or uuid.UUID(circuit[name])
    assert [uuid.UUID(session_id) for session_id in circuit["session_ids"]]
    for route in circuit["route_info"]:
        assert set(route) == ROUTE_FIELDS
        uuid.UUID(route["session_id"])
        assert isinstance(route["kernel_port"], int) and route["protocol"] in PROTOCOLS
    datetime.fromisoformat(circuit["created_at"]), datetime.fromisoformat(circuit["updated_at"])


@pytest.mark.parametrize(
    "body",
    [
        WORKER_25_13["register_port"],
        WORKER_25_13["register_wildcard"],
        WORKER_25_13["register_traefik_wildcard"],
        CONTRACT_24_03["register_port"],
    ],
    ids=["25.13-port", "25.13-wildcard", "25.13-traefik", "24.03-port"],
)
def test_every_registration_body_is_accepted_stored_and_returned(client, as_worker, body):
    registered = client.put("/api/worker", json=body, headers=as_worker)
    assert registered.status_code == 200, registered.text
    worker = registered.json()
    uuid.UUID(worker["id"])
    assert isinstance(worker["slots"], list)  # the worker reads body["id"] and body["slots"]
    again = client.get(f"/api/worker/{worker['id']}", headers=as_worker).json()
    for name, value in body.items():
        if name == "use_tls":
            continue
        expected = [] if name == "app_filters" and value is None else value
        assert worker[name] == expected == again[name], name
    if "use_tls" in body:  # 24.03: use_tls becomes tls_advertised, as upstream's migration does
        assert (worker["use_tls"], worker["tls_listen"], worker["tls_advertised"]) == (True, False, True)
    else:
        assert worker["use_tls"] == (body["tls_listen"] or body["tls_advertised"])


def test_registration_needs_one_of_the_tls_forms(client, as_worker):
    body = {**WORKER_25_13["register_port"]}
    del body["tls_advertised"]
    response = client.put("/api/worker", json=body, headers=as_worker)
    assert response.status_code == 400 and "tls" in response.json()["error"]


def test_the_workers_calls_replay_in_order(client, as_worker, as_manager, create_endpoint):
    worker = client.put("/api/worker", json=WORKER_25_13["register_port"], headers=as_worker).json()
    endpoint_id = str(uuid.uuid4())
    body = json.loads(json.dumps(MANAGER_24_3["endpoint"]).replace("{endpoint_id}", endpoint_id))
    created = client.post(f"/v2/endpoints/{endpoint_id}", json=body, headers=as_manager)
    assert created.status_code == 200, created.text

    circuits = client.get(f"/api/worker/{worker['id']}/circuits", headers=as_worker).json()["circuits"]
    assert len(circuits) == 1
    assert_upstream_circuit(circuits[0])
    assert circuits[0]["endpoint_id"] == endpoint_id and circuits[0]["user_id"] == body["tags"]["session"]["user_uuid"]
    assert client.patch(f"/api/worker/{worker['id']}", headers=as_worker).status_code == 200
    one = client.get(f"/api/circuit/{circuits[0]['id']}", headers=as_worker)
    assert one.status_code == 200
    assert_upstream_circuit(one.json())
    assert client.delete(f"/api/circuit/{circuits[0]['id']}", headers=as_worker).status_code == 200
    assert client.get(f"/api/circuit/{circuits[0]['id']}", headers=as_worker).status_code == 404
    assert client.delete(f"/api/worker/{worker['id']}", headers=as_worker).json() == {"success": True}


def test_app_filters_match_upstream_property_names(client, as_worker, as_manager):
    filtered = {**WORKER_25_13["register_wildcard"], "accepted_traffics": ["inference"]}
    client.put("/api/worker", json=filtered, headers=as_worker)
    plain = {**WORKER_25_13["register_port"], "accepted_traffics": ["inference"]}
    client.put("/api/worker", json=plain, headers=as_worker)

    def create(domain_name: str) -> str:
        endpoint_id = str(uuid.uuid4())
        body = json.loads(json.dumps(MANAGER_24_3["endpoint"]).replace("{endpoint_id}", endpoint_id))
        body["tags"]["session"]["domain_name"] = domain_name
        response = client.post(f"/v2/endpoints/{endpoint_id}", json=body, headers=as_manager)
        assert response.status_code == 200, response.text
        return response.json()["endpoint"]

    # session.domain_name == "default" matches the filtered worker's filter; others go elsewhere.
    assert ".apps.example.com" in create("default")
    assert create("research").startswith("http://127.0.0.1:")


def test_the_managers_calls_replay_without_changes(client, as_manager, register):
    """backend.ai-manager 24.3.11: /status and /v2/conf carry no token; endpoints carry the token."""
    register(WORKER_25_13["register_port"])
    assert client.get("/status").json() == {"api_version": "v2"}
    conf = client.post("/v2/conf", json=MANAGER_24_3["conf"])
    assert conf.status_code == 200 and set(conf.json()) == {"token"}

    endpoint_id = str(uuid.uuid4())
    body = json.loads(json.dumps(MANAGER_24_3["endpoint"]).replace("{endpoint_id}", endpoint_id))
    created = client.post(f"/v2/endpoints/{endpoint_id}", json=body, headers=as_manager)
    assert created.status_code == 200 and created.json()["endpoint"].startswith("http://127.0.0.1:")
    exp = int(datetime.now().timestamp()) + 3600
    token = client.post(
        f"/v2/endpoints/{endpoint_id}/token", json={**MANAGER_24_3["token"], "exp": exp}, headers=as_manager
    )
    assert token.status_code == 200 and token.json()["token"].count(".") == 2
    assert client.delete(f"/v2/endpoints/{endpoint_id}", headers=as_manager).json() == {"success": True}


@pytest.mark.parametrize("form", ["{t}", "Bearer {t}", "BackendAI {t}"])
def test_backendai_token_forms(client, worker_token, form):
    response = client.get("/api/worker", headers={"X-BackendAI-Token": form.format(t=worker_token)})
    assert response.status_code == 200


def test_a_jwt_signed_with_the_token_is_accepted_and_a_forged_one_is_not(client, worker_token, manager_token):
    import jwt

    signed = jwt.encode({"sub": "worker-1"}, worker_token, algorithm="HS256")
    assert client.get("/api/worker", headers={"Authorization": f"Bearer {signed}"}).status_code == 200
    # The role follows the key that signed it: a worker-signed JWT is no manager credential.
    assert (
        client.post(
            f"/v2/endpoints/{uuid.uuid4()}/token",
            json={"user_uuid": str(uuid.uuid4()), "exp": 4102444800},
            headers={"Authorization": f"Bearer {signed}"},
        ).status_code
        == 403
    )
    forged = jwt.encode({"sub": "worker-1"}, "a-guessed-key-long-enough-for-hs256-signing", algorithm="HS256")
    assert client.get("/api/worker", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    expired = jwt.encode({"exp": 1}, manager_token, algorithm="HS256")
    assert client.get("/health/status", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    # X-BackendAI-Token wins, as upstream reads it: a wrong one is refused whatever Authorization says.
    assert (
        client.get(
            "/api/worker", headers={"X-BackendAI-Token": "wrong", "Authorization": f"Bearer {signed}"}
        ).status_code
        == 401
    )


@pytest.fixture
def one_shared_secret(local_stack):
    """Both appproxy tokens set to one value, as upstream deploys a single api_secret."""
    import boto3

    from aiplane.data.secrets import clear_secret_cache
    from aiplane.settings import get_settings
    from aiplane_shared.resources import APPPROXY_MANAGER_TOKEN_SECRET, APPPROXY_WORKER_TOKEN_SECRET

    client = boto3.client("secretsmanager", region_name=get_settings().region)
    names = [
        get_settings().resource(secret.name) for secret in (APPPROXY_MANAGER_TOKEN_SECRET, APPPROXY_WORKER_TOKEN_SECRET)
    ]
    before = [client.get_secret_value(SecretId=name)["SecretString"] for name in names]
    shared = "one-shared-api-secret"
    for name in names:
        client.put_secret_value(SecretId=name, SecretString=shared)
    clear_secret_cache()
    yield shared
    for name, value in zip(names, before, strict=True):
        client.put_secret_value(SecretId=name, SecretString=value)
    clear_secret_cache()


def test_one_shared_secret_serves_both_roles(client, one_shared_secret):
    headers = {"X-BackendAI-Token": one_shared_secret}
    assert client.put("/api/worker", json=WORKER_25_13["register_port"], headers=headers).status_code == 200
    assert client.get("/health/status", headers=headers).status_code == 200


def test_the_worker_secret_is_no_user_token_key(local_stack, worker_jwt_secret):
    import boto3

    from aiplane.settings import get_settings

    secrets = boto3.client("secretsmanager", region_name=get_settings().region)
    user_keys = json.loads(
        secrets.get_secret_value(SecretId=get_settings().resource("jwt-signing-key"))["SecretString"]
    )
    assert worker_jwt_secret and worker_jwt_secret not in user_keys.values()
