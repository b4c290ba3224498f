"""The app factory's shared conventions, on a router made for the test."""

import io
import json

from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel

from aiplane.api.app import create_family_app


class Body(BaseModel):
    name: str
    count: int


router = APIRouter()


@router.post("/probe")
def probe(body: Body) -> dict:
    return body.model_dump()


@router.get("/boom")
def boom() -> dict:
    raise RuntimeError("secret internals")


def client_for(family: str) -> TestClient:
    return TestClient(create_family_app(family, [router], groups=()), raise_server_exceptions=False)


def test_validation_failure_is_400_in_the_envelope_and_names_the_field(admin_api_key):
    response = client_for("runtime").post(
        "/probe", json={"name": "x", "count": "many"}, headers={"X-API-Key": admin_api_key}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "count"
    response = client_for("mlworker").post("/probe", content=b"{not json", headers={"X-API-Key": admin_api_key})
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_unexpected_exception_is_500_without_internals(admin_api_key):
    response = client_for("mlworker").get("/boom", headers={"X-API-Key": admin_api_key})
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "INTERNAL_ERROR" and body["trace_id"]
    assert "secret internals" not in response.text and "Traceback" not in response.text
    response = client_for("gpufarm").get("/boom", headers={"Authorization": f"Bearer {admin_api_key}"})
    assert response.status_code == 500 and response.headers["x-trace-id"]


def test_literal_segments_win_over_parameters(family_clients):
    # /api/v1/models/formats (public) must not be taken for /api/v1/models/{model_id} (protected).
    assert family_clients["gpufarm"].get("/api/v1/models/formats").status_code == 200


def test_a_route_a_router_declares_gets_no_placeholder():
    from fastapi.routing import APIRoute

    from functions.family_app import build_family_app

    for family in ("runtime", "appproxy", "mlworker", "gpufarm"):
        placeholders = [
            route.path
            for route in build_family_app(family).routes
            if isinstance(route, APIRoute) and route.endpoint.__name__ == "not_implemented"
        ]
        assert placeholders == [], family


def test_every_family_sends_nosniff_on_every_response(admin_api_key, family_clients):
    from aiplane_shared.families import FAMILIES

    credentials = {
        "runtime": {"X-API-Key": admin_api_key},
        "mlworker": {"X-API-Key": admin_api_key},
        "gpufarm": {"Authorization": f"Bearer {admin_api_key}"},
        "appproxy": {},
    }
    for family in FAMILIES:
        client = client_for(family)
        responses = [
            client.post("/probe", json={"name": "x", "count": 1}, headers=credentials[family]),
            client.post("/probe", json={}, headers=credentials[family]),
            client.get("/boom", headers=credentials[family]),
            client.get("/probe"),
            client.get("/nowhere"),
            family_clients[family].get("/openapi.json"),
        ]
        for response in responses:
            assert response.headers.get("x-content-type-options") == "nosniff", (
                family,
                response.request.url,
                response.status_code,
            )


def test_one_correlation_id_api_gateways_request_id_in_the_error_body_and_the_logs():
    """Gateway responses and access logs carry `$context.requestId`; the app's errors and log lines
    carry the same id (here through the Web Adapter's request context, as streaming functions get it)."""
    from aiplane.observability import logger
    from functions.streaming.server import AdapterRequestContext

    client = TestClient(
        AdapterRequestContext(create_family_app("mlworker", [router], groups=())), raise_server_exceptions=False
    )
    context = {
        "requestId": "gw-request-42",
        "authorizer": {"principalId": "p-1", "kind": "admin", "credential": "api_key"},
    }
    lines = io.StringIO()
    previous = logger.registered_handler.setStream(lines)
    try:
        response = client.get(
            "/boom", headers={"x-amzn-request-context": json.dumps(context), "x-request-id": "client-chosen"}
        )
    finally:
        logger.registered_handler.setStream(previous)
    assert response.status_code == 500, response.text
    assert response.json()["trace_id"] == response.headers["x-trace-id"] == "gw-request-42"
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert any(line["message"] == "unhandled error" and line["correlation_id"] == "gw-request-42" for line in logged), (
        logged
    )
