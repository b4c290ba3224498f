"""Shared set-up for the app proxy coordinator tests: a clean worker pool per test and small
helpers that speak the contract over HTTP."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from aiplane.appproxy.workers import deregister_worker, list_workers

# Every field of WorkerResponseModel (contract 000).
WORKER_FIELDS = {
    "authority",
    "frontend_mode",
    "protocol",
    "hostname",
    "use_tls",
    "api_port",
    "port_range",
    "wildcard_domain",
    "filtered_apps_only",
    "accepted_traffics",
    "id",
    "created_at",
    "updated_at",
    "available_slots",
    "occupied_slots",
    "nodes",
    "slots",
    # and what 25.x workers send besides, stored and returned
    "tls_listen",
    "tls_advertised",
    "wildcard_traffic_port",
    "traefik_last_used_marker_path",
    "app_filters",
}
# Every field of SerializableCircuit.
CIRCUIT_FIELDS = {
    "id",
    "app",
    "protocol",
    "worker",
    "app_mode",
    "frontend_mode",
    "envs",
    "arguments",
    "open_to_public",
    "allowed_client_ips",
    "port",
    "subdomain",
    "user_id",
    "endpoint_id",
    "runtime_variant",
    "route_info",
    "session_ids",
    "created_at",
    "updated_at",
}
SLOT_FIELDS = {"frontend_mode", "in_use", "port", "subdomain", "circuit_id"}


@pytest.fixture(scope="session")
def worker_jwt_secret(local_stack) -> str:
    """What a worker holds as `secrets.jwt_secret`."""
    return local_stack.bootstrap["appproxy-jwt-secret"]


@pytest.fixture
def setup_permit(worker_jwt_secret):
    """The permit of a /v2/proxy/auth redirect, as the worker's /setup decodes it."""
    import jwt

    def decode(redirect_url: str) -> dict[str, Any]:
        url = urlsplit(redirect_url)
        assert url.path == "/setup", redirect_url
        return jwt.decode(parse_qs(url.query)["token"][0], worker_jwt_secret, algorithms=["HS256"])

    return decode


@pytest.fixture(autouse=True)
def empty_worker_pool():
    """Placement looks at every registered worker, so each test starts with none."""

    def clear() -> None:
        for worker in list_workers():
            for _ in range(int(worker.nodes)):
                deregister_worker(worker.worker_id)

    clear()
    yield
    clear()


@pytest.fixture
def client(family_clients):
    return family_clients["appproxy"]


@pytest.fixture
def as_worker(worker_token) -> dict[str, str]:
    return {"X-BackendAI-Token": worker_token}


@pytest.fixture
def as_manager(manager_token) -> dict[str, str]:
    return {"X-BackendAI-Token": manager_token}


def port_worker(
    authority: str = "proxy-port.example", first: int = 20000, last: int = 20009, **overrides: Any
) -> dict[str, Any]:
    return {
        "authority": authority,
        "frontend_mode": "port",
        "protocol": "http",
        "hostname": f"{authority}",
        "use_tls": False,
        "api_port": 6001,
        "port_range": [first, last],
        "wildcard_domain": None,
        "filtered_apps_only": False,
        "accepted_traffics": ["interactive", "inference"],
        "app_filters": [],
        **overrides,
    }


def wildcard_worker(authority: str = "proxy-wildcard.example", **overrides: Any) -> dict[str, Any]:
    return {
        "authority": authority,
        "frontend_mode": "wildcard",
        "protocol": "http",
        "hostname": authority,
        "use_tls": True,
        "api_port": 6002,
        "port_range": None,
        "wildcard_domain": ".apps.example.com",
        "filtered_apps_only": False,
        "accepted_traffics": ["interactive", "inference"],
        "app_filters": [],
        **overrides,
    }


@pytest.fixture
def register(client, as_worker):
    def register(body: dict[str, Any]) -> dict[str, Any]:
        response = client.put("/api/worker", json=body, headers=as_worker)
        assert response.status_code == 200, response.text
        return response.json()

    return register


def endpoint_body(
    session_id: str | None = None,
    port: int | None = None,
    subdomain: str | None = None,
    domain_name: str = "default",
    **apps: Any,
) -> dict[str, Any]:
    session_id = session_id or str(uuid.uuid4())
    return {
        "service_name": "llama",
        "tags": {
            "session": {
                "id": session_id,
                "user_uuid": "u-1",
                "group_id": "g-1",
                "access_key": None,
                "domain_name": domain_name,
            },
            "endpoint": {"id": "ignored", "existing_url": None},
        },
        "apps": apps
        or {"vllm": [{"session_id": session_id, "kernel_host": "10.0.0.5", "kernel_port": 8000, "traffic_ratio": 1.0}]},
        "open_to_public": False,
        "port": port,
        "subdomain": subdomain,
    }


@pytest.fixture
def create_endpoint(client, as_manager):
    def create(endpoint_id: str | None = None, **body: Any):
        endpoint_id = endpoint_id or str(uuid.uuid4())
        return endpoint_id, client.post(f"/v2/endpoints/{endpoint_id}", json=endpoint_body(**body), headers=as_manager)

    return create


def conf_body(session_id: str, user_uuid: str = "user-1") -> dict[str, Any]:
    return {
        "login_session_token": None,
        "kernel_host": "10.0.0.7",
        "kernel_port": 30001,
        "session": {
            "id": session_id,
            "user_uuid": user_uuid,
            "group_id": "g-1",
            "access_key": "AKIA",
            "domain_name": "default",
        },
    }


@pytest.fixture
def open_app(client, as_manager):
    """POST /v2/conf then GET /v2/proxy/auth (JSON answer); returns the response."""

    def open_app(session_id: str | None = None, app: str = "jupyter", **params: Any):
        session_id = session_id or str(uuid.uuid4())
        token = client.post("/v2/conf", json=conf_body(session_id), headers=as_manager).json()["token"]
        query = {"app": app, "protocol": "http", "token": token, "session_id": session_id, **params}
        return client.get("/v2/proxy/auth", params=query, headers={"Accept": "application/json"})

    return open_app
