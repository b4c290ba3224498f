"""Every contract route is served at its family's base path, with the family's auth and
envelope; the OpenAPI documents describe exactly the contract."""

import re

import pytest

from aiplane_shared.families import FAMILIES
from aiplane_shared.routes import MANAGER, PUBLIC, WORKER, contract_routes, routes_of

ROUTES = contract_routes()
PROTECTED = [r for r in ROUTES if r.access != PUBLIC]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def assert_envelope(family: str, body: dict) -> None:
    if family == "runtime":
        assert set(body["error"]) == {"code", "message", "param", "type"}
    elif family == "mlworker":
        assert set(body) == {"error", "code", "trace_id"}
    elif family == "gpufarm":
        assert set(body) == {"error", "code", "details"}
    else:
        assert {"error", "code"} <= set(body)


@pytest.mark.parametrize("family", FAMILIES)
def test_openapi_paths_equal_the_contract(family_clients, family):
    response = family_clients[family].get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    served = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert served >= {(r.method, r.path) for r in routes_of(family)}
    assert {path for _, path in served} == {r.path for r in routes_of(family)}


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.family} {r.method} {r.path}")
def test_protected_route_refuses_a_request_without_credentials(family_clients, route):
    response = family_clients[route.family].request(route.method, concrete(route.path))
    assert response.status_code == 401, response.text
    assert_envelope(route.family, response.json())


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.family} {r.method} {r.path}")
def test_protected_route_refuses_a_wrong_credential(family_clients, route):
    headers = {
        "runtime": {"X-API-Key": "aip_wrong"},
        "mlworker": {"X-API-Key": "aip_wrong"},
        "gpufarm": {"Authorization": "Bearer aip_wrong"},
        "appproxy": {"X-BackendAI-Token": "wrong"},
    }
    response = family_clients[route.family].request(route.method, concrete(route.path), headers=headers[route.family])
    assert response.status_code == 401
    assert_envelope(route.family, response.json())


def credential_headers(family, admin_api_key, manager_token, worker_token, access):
    if family == "appproxy":
        return {"X-BackendAI-Token": manager_token if access == MANAGER else worker_token}
    if family == "gpufarm":
        return {"Authorization": f"Bearer {admin_api_key}"}
    return {"X-API-Key": admin_api_key}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.family} {r.method} {r.path}")
def test_every_route_answers_without_a_server_error(family_clients, admin_api_key, manager_token, worker_token, route):
    headers = credential_headers(route.family, admin_api_key, manager_token, worker_token, route.access)
    response = family_clients[route.family].request(route.method, concrete(route.path), headers=headers)
    assert response.status_code < 500 or response.status_code == 501, response.text
    if response.status_code >= 400:
        assert_envelope(route.family, response.json())


def test_manager_route_refuses_the_worker_token_with_403(family_clients, worker_token, manager_token):
    client = family_clients["appproxy"]
    response = client.get("/health/status", headers={"X-BackendAI-Token": worker_token})
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    worker_route = next(r for r in routes_of("appproxy") if r.access == WORKER and r.method == "GET")
    assert client.get(concrete(worker_route.path), headers={"X-BackendAI-Token": manager_token}).status_code == 403


@pytest.mark.parametrize("family", FAMILIES)
def test_unknown_route_is_a_404_in_the_envelope(family_clients, family):
    response = family_clients[family].get("/definitely/not/here")
    assert response.status_code == 404
    assert_envelope(family, response.json())
