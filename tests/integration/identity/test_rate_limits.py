"""mlworker's per-key rate limit: counted in DynamoDB, so concurrent requests (as from many Lambda
instances) cannot exceed it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from aiplane.api.app import create_family_app
from aiplane.identity.api_keys import issue_api_key
from aiplane.identity.rate_limits import WINDOW_S
from aiplane.identity.users import create_user
from aiplane_shared.families import MLWORKER, RUNTIME
from tests.integration.identity.conftest import STRONG_PASSWORD, unique_email

LIMIT = 5

pytestmark = pytest.mark.usefixtures("key_window_not_ending")


@pytest.fixture(scope="module")
def mlworker() -> TestClient:
    """The mlworker family app with one cheap route that answers 200 (the real groups are built
    elsewhere; the limit is enforced by the family's auth dependency, the same for every route)."""
    router = APIRouter()

    @router.get("/v1/tasks")
    def list_tasks() -> dict[str, list]:
        return {"tasks": []}

    return TestClient(create_family_app("mlworker", [router], groups=()), raise_server_exceptions=False)


def limited_key(limit: int) -> str:
    user = create_user(unique_email("limited"), STRONG_PASSWORD, families=[MLWORKER, RUNTIME])
    return issue_api_key(user.user_id, "limited", rate_limit=limit).api_key


def wait_for_a_fresh_window(margin_s: float = 3.0) -> None:
    into_window = time.time() % WINDOW_S
    if into_window > WINDOW_S - margin_s:
        time.sleep(WINDOW_S - into_window + 0.05)


def test_concurrent_requests_over_the_limit_get_429_within_it_200(mlworker):
    key = limited_key(LIMIT)
    wait_for_a_fresh_window()
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda _: mlworker.get("/v1/tasks", headers={"X-API-Key": key}), range(12)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * LIMIT + [429] * (12 - LIMIT)
    refused = next(response for response in responses if response.status_code == 429)
    assert set(refused.json()) == {"error", "code", "trace_id"} and refused.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW_S


def test_each_key_has_its_own_budget_and_the_bootstrap_admin_is_exempt(mlworker, admin_api_key):
    wait_for_a_fresh_window()
    first, second = limited_key(2), limited_key(2)
    assert [mlworker.get("/v1/tasks", headers={"X-API-Key": first}).status_code for _ in range(3)] == [200, 200, 429]
    assert mlworker.get("/v1/tasks", headers={"X-API-Key": second}).status_code == 200
    assert all(mlworker.get("/v1/tasks", headers={"X-API-Key": admin_api_key}).status_code == 200 for _ in range(5))


def test_runtime_is_not_rate_limited_per_key(family_clients):
    wait_for_a_fresh_window()
    key = limited_key(1)
    assert [family_clients["runtime"].get("/ui/me", headers={"X-API-Key": key}).status_code for _ in range(3)] == [
        200
    ] * 3
