"""Tasks, job streams and reservations belong to their owner (and admins); the audit log is
admin-only; a user's reservations are capped in GPU-hours. Each test replays the attack of
issue 10 (user B reading and changing user A's work) and shows it refused."""

from __future__ import annotations

import pytest

from aiplane.mlworker import reservations
from tests.integration.mlworker.conftest import sse_events


def test_another_user_can_neither_read_nor_change_a_task(client, user_headers, other_user_headers, submit):
    task = submit("private", headers=user_headers)
    assert client.get(f"/v1/tasks/{task['id']}", headers=user_headers).status_code == 200
    for response in (
        client.get(f"/v1/tasks/{task['id']}", headers=other_user_headers),
        client.delete(f"/v1/tasks/{task['id']}", headers=other_user_headers),
        client.patch(f"/v1/scheduler/jobs/{task['id']}/priority", headers=other_user_headers, json={"priority": 10}),
        client.get(f"/v1/scheduler/jobs/{task['id']}/stream", headers=other_user_headers),
    ):
        assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"
    assert client.get(f"/v1/tasks/{task['id']}", headers=user_headers).json()["status"] == "queued"


def test_task_lists_and_the_queue_show_only_the_callers_tasks(client, admin, user_headers, other_user_headers, submit):
    mine = submit("mine", headers=user_headers)
    theirs = submit("theirs", headers=other_user_headers)
    listed = client.get("/v1/tasks", headers=other_user_headers).json()
    assert [task["id"] for task in listed["tasks"]] == [theirs["id"]] and listed["total"] == 1
    refused = client.get("/v1/tasks", headers=other_user_headers, params={"user_id": mine["user_id"]})
    assert refused.status_code == 403
    queue = client.get("/v1/queue", headers=other_user_headers).json()
    assert queue["queued"] == 2 and [entry["id"] for entry in queue["queue"]] == [theirs["id"]]
    assert {task["id"] for task in client.get("/v1/tasks", headers=admin).json()["tasks"]} == {mine["id"], theirs["id"]}
    assert client.get(f"/v1/tasks/{mine['id']}", headers=admin).status_code == 200


def test_owners_and_admins_stream_a_job(client, admin, user_headers, submit):
    task = submit("streamed", headers=user_headers)
    for headers in (user_headers, admin):
        response = client.get(f"/v1/scheduler/jobs/{task['id']}/stream", headers=headers)
        assert response.status_code == 200
        assert [event["event"] for event in sse_events(response.text)][:1] == ["state_changed"]


def test_the_status_stream_carries_only_the_callers_events(client, admin, user_headers, other_user_headers, submit):
    submit("mine", headers=user_headers)
    theirs = submit("theirs", headers=other_user_headers)
    streamed = sse_events(
        client.get("/v1/scheduler/status/stream", headers={**other_user_headers, "Last-Event-ID": "0"}).text
    )
    changes = [event for event in streamed if event["event"] != "status"]
    assert [event["data"]["resource"] for event in changes] == [f"task/{theirs['id']}"]
    everything = sse_events(client.get("/v1/scheduler/status/stream", headers={**admin, "Last-Event-ID": "0"}).text)
    assert len([event for event in everything if event["event"] != "status"]) == 2


def test_reservations_are_listed_for_their_owner_and_admins(client, admin, register, user_headers, other_user_headers):
    register("gpu-1", gpu_count=8)
    created = client.post("/v1/scheduler/reservations", headers=user_headers, json={"gpu_count": 1})
    assert created.status_code == 201, created.text
    assert client.get("/v1/scheduler/reservations", headers=other_user_headers).json() == []
    assert [r["id"] for r in client.get("/v1/scheduler/reservations", headers=user_headers).json()] == [
        created.json()["id"]
    ]
    assert len(client.get("/v1/scheduler/reservations", headers=admin).json()) == 1


@pytest.mark.parametrize(
    "route", [("get", "/v1/audit/events"), ("post", "/v1/audit/verify"), ("get", "/v1/audit/chain-root")]
)
def test_the_audit_log_is_admin_only(client, admin, user_headers, route):
    method, path = route
    response = getattr(client, method)(path, headers=user_headers)
    assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"
    assert getattr(client, method)(path, headers=admin).status_code == 200


def test_reservations_beyond_the_per_user_gpu_hours_are_refused(
    client, admin, register, user_headers, other_user_headers
):
    register("gpu-1", gpu_count=64)
    limit = reservations.gpu_hours_limit()  # 16 GPU-hours locally
    # The attack: reserve every GPU for 7 days.
    greedy = client.post(
        "/v1/scheduler/reservations",
        headers=user_headers,
        json={"gpu_count": 8, "node_count": 8, "expires_minutes": 7 * 24 * 60},
    )
    assert greedy.status_code == 403 and "GPU-hours" in greedy.json()["error"]
    half = {"gpu_count": int(limit // 2), "expires_minutes": 60}
    assert client.post("/v1/scheduler/reservations", headers=user_headers, json=half).status_code == 201
    assert client.post("/v1/scheduler/reservations", headers=user_headers, json=half).status_code == 201
    over = client.post("/v1/scheduler/reservations", headers=user_headers, json={"gpu_count": 1, "expires_minutes": 60})
    assert over.status_code == 403 and over.json()["code"] == "FORBIDDEN"
    assert len(client.get("/v1/scheduler/reservations", headers=user_headers).json()) == 2  # nothing written
    # The limit is per user; admins are exempt.
    assert client.post("/v1/scheduler/reservations", headers=other_user_headers, json=half).status_code == 201
    assert (
        client.post(
            "/v1/scheduler/reservations", headers=admin, json={"gpu_count": 8, "expires_minutes": 24 * 60}
        ).status_code
        == 201
    )
