"""Inputs that answered 500 are refused with a 400 in the family's envelope, with nothing
written (or, for the preferences' second save, simply work)."""

from __future__ import annotations

import uuid

import pytest

from aiplane.gpufarm.records import GpuContractRecord
from aiplane_shared.payloads import LAMBDA_BODY_MAX_BYTES
from tests.integration.test_contract_surface import assert_envelope

PASSWORD = "correct-horse-42"
DEEP = 100_000


@pytest.fixture
def gpufarm_user(family_clients) -> tuple[str, dict[str, str]]:
    gpufarm = family_clients["gpufarm"]
    email = f"bodies-{uuid.uuid4().hex[:10]}@example.com"
    user_id = gpufarm.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).json()["user"]["id"]
    token = gpufarm.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()["tokens"][
        "access_token"
    ]
    return user_id, {"Authorization": f"Bearer {token}"}


def assert_refused(response, family: str) -> None:
    assert response.status_code == 400, response.text
    assert_envelope(family, response.json())


def test_a_second_preferences_save_keeps_the_first_ones_id_and_creation(family_clients, gpufarm_user):
    gpufarm, (_, headers) = family_clients["gpufarm"], gpufarm_user
    first = gpufarm.post("/api/v1/gpu/preferences", headers=headers, json={"priority": "cost", "min_vram": 8})
    assert first.status_code == 200, first.text
    second = gpufarm.post("/api/v1/gpu/preferences", headers=headers, json={"priority": "performance"})
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["preferences"]["created_at"] == first.json()["preferences"]["created_at"]
    assert gpufarm.get("/api/v1/gpu/preferences", headers=headers).json()["priority"] == "performance"


@pytest.mark.parametrize("path", ["/api/v1/mcp", "/api/v1/agent"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_deeply_nested_json_on_mcp_and_agent_is_a_400(family_clients, gpufarm_user, path, content_type):
    headers = {**gpufarm_user[1], **({"Content-Type": content_type} if content_type else {})}
    nested = '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}"
    assert_refused(family_clients["gpufarm"].post(path, headers=headers, content=nested), "gpufarm")


def test_an_odd_content_type_still_cannot_make_mcp_recurse(family_clients, gpufarm_user):
    nested = "[" * DEEP + "]" * DEEP
    response = family_clients["gpufarm"].post(
        "/api/v1/mcp", headers={**gpufarm_user[1], "Content-Type": "application/x-odd"}, content=nested
    )
    assert response.status_code == 200 and response.json()["error"]["code"] == -32700  # JSON-RPC parse error


@pytest.mark.parametrize("cost", ["1.7976931348623157e308", "1e100"])
def test_an_estimated_cost_beyond_range_is_a_400(family_clients, gpufarm_user, cost):
    gpufarm, (_, headers) = family_clients["gpufarm"], gpufarm_user
    body = '{"estimated_cost": ' + cost + "}"
    assert_refused(
        gpufarm.post(
            "/api/v1/guardrails/spending/check", headers={**headers, "Content-Type": "application/json"}, content=body
        ),
        "gpufarm",
    )
    mcp = (
        '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "check_spending", '
        '"arguments": {"estimated_cost": ' + cost + "}}}"
    )
    response = gpufarm.post("/api/v1/mcp", headers={**headers, "Content-Type": "application/json"}, content=mcp)
    if cost == "1e100":  # storable: the tool itself refuses it
        assert response.status_code == 200 and response.json()["result"]["isError"] is True
    else:
        assert_refused(response, "gpufarm")


def test_a_duration_dynamodb_cannot_store_is_a_400_with_nothing_written(family_clients, gpufarm_user):
    gpufarm, (user_id, headers) = family_clients["gpufarm"], gpufarm_user
    body = '{"aws_count": 1, "config": {"duration_hours": 5e-324}}'
    assert_refused(
        gpufarm.post(
            "/api/v1/gpu/instances/batch", headers={**headers, "Content-Type": "application/json"}, content=body
        ),
        "gpufarm",
    )
    assert list(GpuContractRecord.scan(GpuContractRecord.user_id == user_id)) == []


@pytest.mark.parametrize(
    ("family", "method", "path"),
    [
        ("runtime", "POST", "/backends"),
        ("mlworker", "POST", "/v1/tasks"),
        ("appproxy", "POST", "/v2/conf"),
        ("gpufarm", "POST", "/api/v1/guardrails/spending/check"),
    ],
)
def test_every_family_bounds_numbers_and_depth_in_its_envelope(family_clients, family, method, path):
    for body in ('{"x": 1e400}', '{"x": 5e-324}', '{"x": NaN}', "[" * 1000 + "]" * 1000):
        response = family_clients[family].request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
        assert_refused(response, family)


# Bodies the Lambda invoke could not carry (see docs/cloud.md): the local stack answers as deployed, 413 in the envelope.
OVER_LAMBDA = LAMBDA_BODY_MAX_BYTES + 1
TOO_LARGE_PATHS = {
    "runtime": "/v1/chat/completions",
    "mlworker": "/tasks",
    "appproxy": "/v2/endpoints/e-1/token",
    "gpufarm": "/api/v1/mcp",
}


@pytest.mark.parametrize("family", sorted(TOO_LARGE_PATHS))
def test_a_body_over_the_lambda_limit_is_a_413_in_the_family_envelope(family_clients, family):
    response = family_clients[family].post(
        TOO_LARGE_PATHS[family], content=b"x" * OVER_LAMBDA, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert_envelope(family, response.json())
    assert "presigned" in response.text


def test_a_chunked_body_over_the_lambda_limit_is_refused_once_that_much_arrived(family_clients, gpufarm_user):
    chunks = (b"x" * (1024 * 1024) for _ in range(OVER_LAMBDA // (1024 * 1024) + 1))
    response = family_clients["gpufarm"].post("/api/v1/mcp", headers=gpufarm_user[1], content=chunks)
    assert response.status_code == 413, response.text
    assert_envelope("gpufarm", response.json())


def test_a_body_at_the_lambda_limit_reaches_the_route(family_clients, gpufarm_user):
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "nope", "pad": "' + b"x" * (LAMBDA_BODY_MAX_BYTES - 100) + b'"}'
    assert len(body) <= LAMBDA_BODY_MAX_BYTES
    response = family_clients["gpufarm"].post("/api/v1/mcp", headers=gpufarm_user[1], content=body)
    assert response.status_code == 200 and "error" in response.json(), response.text  # JSON-RPC's own answer
