"""Shared set-up for the ML worker tests: an empty mlworker table per test (scheduling, the
queue and the audit chain look at everything in it) and helpers that speak the API over HTTP."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from aiplane.data.aws import client as aws_client
from aiplane.identity.api_keys import issue_api_key
from aiplane.identity.users import create_user
from aiplane.mlworker import audit
from aiplane.mlworker.models import TABLE_NAME
from events.generate import scheduled_tick

# Every field of the contract's Task schema that a fresh task carries.
TASK_FIELDS = {
    "id",
    "job_name",
    "status",
    "priority",
    "created_at",
    "datasets",
    "cpu",
    "memory_gb",
    "gpu",
    "user_id",
    "retry_count",
    "max_retries",
    "plugin_status",
    "node_assignments",
    "priority_aged",
}
WORKER_FIELDS = {"id", "connected_at", "last_heartbeat", "capabilities", "slots", "active_tasks", "status", "shared"}
AUDIT_EVENT_FIELDS = {
    "timestamp",
    "event_type",
    "user_id",
    "resource",
    "action",
    "success",
    "prev_hash",
    "event_hash",
    "sequence_num",
    "metadata",
}


def clear_table() -> None:
    """Test-only: empty the mlworker table (a Scan is fine here, never in product code)."""
    dynamodb = aws_client("dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE_NAME, ProjectionExpression="pk, sk"):
        for item in page["Items"]:
            dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": item["pk"], "sk": item["sk"]})


@pytest.fixture(autouse=True)
def empty_mlworker_table(monkeypatch):
    """An empty table and a digest prefix of its own: digests are locked in S3 for good, and the
    previous test's digests would rightly report this test's empty table as wiped."""
    clear_table()
    monkeypatch.setattr(audit, "CHAIN", audit.CHAIN._replace(digest_prefix=f"test-{uuid.uuid4().hex}"))
    yield


@pytest.fixture
def client(family_clients):
    return family_clients["mlworker"]


@pytest.fixture
def admin(admin_api_key) -> dict[str, str]:
    return {"X-API-Key": admin_api_key}


def new_user_headers() -> dict[str, str]:
    user = create_user(f"ml-{uuid.uuid4().hex[:8]}@example.com", "Correct-Horse-Battery-9", families=["mlworker"])
    return {"X-API-Key": issue_api_key(user.user_id, "mlworker tests").api_key}


@pytest.fixture(scope="session")
def user_headers() -> dict[str, str]:
    """A non-admin caller."""
    return new_user_headers()


@pytest.fixture(scope="session")
def other_user_headers() -> dict[str, str]:
    """A second non-admin caller."""
    return new_user_headers()


@pytest.fixture
def submit(client, admin):
    def submit_task(job_name: str = "train", headers: dict[str, str] | None = None, **fields: Any) -> dict:
        response = client.post("/v1/tasks", headers=headers or admin, json={"job_name": job_name, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    return submit_task


@pytest.fixture
def register(client, admin):
    """An admin registers a worker: shared (takes every user's tasks) unless `shared=False`."""

    def register_worker(
        worker_id: str = "gpu-1",
        gpu_count: int = 4,
        gpu_type: str | None = "H100",
        cpu_cores: int = 32,
        memory_gb: int = 256,
        shared: bool = True,
    ) -> dict:
        capabilities = {"gpu_count": gpu_count, "gpu_type": gpu_type, "cpu_cores": cpu_cores, "memory_gb": memory_gb}
        response = client.post(
            "/v1/scheduler/workers",
            headers=admin,
            json={"id": worker_id, "capabilities": capabilities, "shared": shared},
        )
        assert response.status_code in (200, 201), response.text
        return response.json()

    return register_worker


@pytest.fixture
def lease(client, admin):
    def lease_for(worker_id: str) -> dict | None:
        response = client.post(f"/v1/scheduler/workers/{worker_id}/lease", headers=admin)
        assert response.status_code in (200, 204), response.text
        return response.json() if response.status_code == 200 else None

    return lease_for


def sse_events(text: str) -> list[dict[str, Any]]:
    """Parse an SSE body into [{"id", "event", "data"}] (comment/retry-only blocks skipped)."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append({"id": fields.get("id"), "event": fields["event"], "data": json.loads(fields["data"])})
    return events
