"""Tasks (/v1/tasks, /v1/queue) against contract 002."""

from __future__ import annotations

import pytest

from aiplane.mlworker.models import TaskRecord
from tests.integration.mlworker.conftest import TASK_FIELDS


def test_create_answers_201_with_the_task(client, admin):
    response = client.post(
        "/v1/tasks",
        headers=admin,
        json={
            "job_name": "resnet_50-train",
            "priority": 7,
            "entrypoint": "train.py",
            "args": "--epochs 3",
            "snapshot_id": "snap-1",
            "datasets": ["imagenet"],
            "cpu": 8,
            "memory_gb": 64,
            "gpu": 2,
            "dataset_specs": [{"name": "imagenet", "source": "s3://data/imagenet", "mount_path": "/data"}],
            "metadata": {"team": "vision"},
        },
    )
    assert response.status_code == 201
    task = response.json()
    assert TASK_FIELDS <= set(task)
    assert task["status"] == "queued" and task["priority"] == 7 and task["job_name"] == "resnet_50-train"
    assert (task["cpu"], task["memory_gb"], task["gpu"]) == (8, 64, 2)
    assert task["entrypoint"] == "train.py" and task["snapshot_id"] == "snap-1" and task["datasets"] == ["imagenet"]
    assert task["user_id"] == "admin" and task["retry_count"] == 0 and task["node_assignments"] == []
    assert client.get(f"/v1/tasks/{task['id']}", headers=admin).json() == {
        **task,
        "priority_aged": pytest.approx(task["priority_aged"], abs=0.01),
    }


def test_priority_defaults_to_five(submit):
    assert submit("defaults")["priority"] == 5


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"job_name": ""},
        {"job_name": "has space"},
        {"job_name": "semi;colon"},
        {"job_name": "x" * 65},
        {"job_name": "ok", "priority": 0},
        {"job_name": "ok", "priority": 11},
        {"job_name": "ok", "gpu": -1},
        {"job_name": "ok", "cpu": "many"},
        {"job_name": "ok", "memory_gb": -4},
        {"job_name": "ok", "datasets": "not-a-list"},
        {"job_name": "ok", "metadata": {"nested": {"a": 1}}},
        {"job_name": "ok", "dataset_specs": [{"sha256": "not-hex"}]},
    ],
)
def test_invalid_submissions_are_refused_and_nothing_is_written(client, admin, body):
    response = client.post("/v1/tasks", headers=admin, json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR" and set(response.json()) == {"error", "code", "trace_id"}
    assert list(TaskRecord.by_created.query("TASKS")) == []


def test_job_name_of_exactly_64_characters_is_accepted(submit):
    assert submit("a" * 64)["job_name"] == "a" * 64


def test_unknown_task_is_404(client, admin):
    for method in ("get", "delete"):
        response = getattr(client, method)("/v1/tasks/nope", headers=admin)
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


def test_list_filters_by_status_and_user_and_pages_with_limit_and_offset(
    client, admin, user_headers, submit, register, lease
):
    first = submit("first")
    second = submit("second")
    mine = submit("mine", headers=user_headers)
    register("gpu-1")
    leased = lease("gpu-1")

    everything = client.get("/v1/tasks", headers=admin).json()
    assert set(everything) == {"tasks", "total", "limit", "offset"}
    assert everything["total"] == 3 and (everything["limit"], everything["offset"]) == (50, 0)
    assert [t["id"] for t in everything["tasks"]] == [mine["id"], second["id"], first["id"]]  # newest first

    running = client.get("/v1/tasks", headers=admin, params={"status": "running"}).json()
    assert [t["id"] for t in running["tasks"]] == [leased["id"]]  # preparing counts as running
    queued = client.get("/v1/tasks", headers=admin, params={"status": "queued"}).json()
    assert queued["total"] == 2

    user_id = mine["user_id"]
    by_user = client.get("/v1/tasks", headers=admin, params={"user_id": user_id}).json()
    assert [t["id"] for t in by_user["tasks"]] == [mine["id"]]

    page = client.get("/v1/tasks", headers=admin, params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and page["limit"] == 1 and page["offset"] == 1
    assert [t["id"] for t in page["tasks"]] == [second["id"]]


@pytest.mark.parametrize("params", [{"status": "bogus"}, {"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"offset": -1}])
def test_bad_list_parameters_are_400(client, admin, params):
    response = client.get("/v1/tasks", headers=admin, params=params)
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"


def test_cancel_ends_the_task_as_failed(client, admin, submit):
    task = submit("to-cancel")
    response = client.delete(f"/v1/tasks/{task['id']}", headers=admin)
    assert response.status_code == 204 and response.content == b""
    cancelled = client.get(f"/v1/tasks/{task['id']}", headers=admin).json()
    assert cancelled["status"] == "failed" and cancelled["error"] == "cancelled" and "ended_at" in cancelled
    again = client.delete(f"/v1/tasks/{task['id']}", headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "CONFLICT"


def test_users_cannot_cancel_tasks_of_others(client, user_headers, submit):
    task = submit("admins-task")
    response = client.delete(f"/v1/tasks/{task['id']}", headers=user_headers)
    assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"


def test_queue_lists_queued_tasks_in_priority_order_with_positions(client, admin, submit, register, lease):
    low = submit("low", priority=2)
    high = submit("high", priority=9)
    mid_first = submit("mid-first", priority=5)
    mid_second = submit("mid-second", priority=5)
    register("gpu-1", gpu_count=1)
    submit("runs", priority=10, gpu=1)
    assert lease("gpu-1")["job_name"] == "runs"

    stats = client.get("/v1/queue", headers=admin).json()
    assert {k: stats[k] for k in ("queued", "running", "completed", "failed", "workers")} == {
        "queued": 4,
        "running": 1,
        "completed": 0,
        "failed": 0,
        "workers": 1,
    }
    assert [(e["position"], e["id"]) for e in stats["queue"]] == [
        (1, high["id"]),
        (2, mid_first["id"]),
        (3, mid_second["id"]),
        (4, low["id"]),
    ]
