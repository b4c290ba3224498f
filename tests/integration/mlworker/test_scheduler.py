"""Scheduler routes, the GPU worker protocol, reservations, streams and lease expiry."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from aiplane.mlworker import workers
from aiplane.mlworker.models import TaskRecord, WorkerRecord
from aiplane.mlworker.tasks import get_task
from aiplane.mlworker.workers import get_worker
from aiplane_local.lambda_runtime import invoke
from tests.integration.mlworker.conftest import WORKER_FIELDS, scheduled_tick, sse_events

STATUS_FIELDS = {
    "workers_total",
    "workers_active",
    "workers_draining",
    "batch_queue_depth",
    "service_queue_depth",
    "tasks_running",
    "tasks_completed_24h",
    "reservations_active",
    "timestamp",
}


def report(client, admin, task_id: str, worker_id: str, status: str, **fields):
    """As the lease holder does: with the task's current fencing token unless told otherwise."""
    fields.setdefault("fencing_token", int(get_task(task_id).fencing_token or 0) or 1)
    return client.post(
        f"/v1/scheduler/jobs/{task_id}/state", headers=admin, json={"worker_id": worker_id, "status": status, **fields}
    )


def test_worker_registration_listing_and_details(client, admin, register):
    created = register("gpu-1", gpu_count=8, gpu_type="A100")
    assert set(created) == WORKER_FIELDS and created["status"] == "active"
    assert created["capabilities"] == {"gpu_count": 8, "gpu_type": "A100", "cpu_cores": 32, "memory_gb": 256}
    assert created["slots"]["batch_total"] == 8 and created["slots"]["batch_available"] == 8
    again = client.post("/v1/scheduler/workers", headers=admin, json={"id": "gpu-1", "capabilities": {"gpu_count": 8}})
    assert again.status_code == 200  # re-registration after a restart
    assert [w["id"] for w in client.get("/v1/scheduler/workers", headers=admin).json()] == ["gpu-1"]
    assert client.get("/v1/scheduler/workers/gpu-1", headers=admin).json()["id"] == "gpu-1"
    missing = client.get("/v1/scheduler/workers/nope", headers=admin)
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


def test_worker_protocol_needs_an_admin_key(client, user_headers):
    response = client.post("/v1/scheduler/workers", headers=user_headers, json={"id": "rogue"})
    assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"
    assert client.post("/v1/scheduler/workers", json={"id": "rogue"}).status_code == 401


def test_full_lifecycle_through_the_worker_protocol(client, admin, submit, register, lease):
    task = submit("lifecycle", gpu=1, args="--epochs 1", metadata={"k": "v"})
    register("gpu-1")
    work = lease("gpu-1")
    assert work["id"] == task["id"] and work["status"] == "preparing" and work["worker_id"] == "gpu-1"
    assert work["args"] == "--epochs 1" and work["metadata"] == {"k": "v"} and work["lease_expires_epoch"] > time.time()
    assert lease("gpu-1") is None  # nothing else queued
    assert report(client, admin, task["id"], "gpu-1", "running").json()["started_at"]
    assert report(client, admin, task["id"], "gpu-1", "collecting").json()["status"] == "collecting"
    done = report(client, admin, task["id"], "gpu-1", "completed", output="accuracy=0.93").json()
    assert done["status"] == "completed" and done["output"] == "accuracy=0.93" and done["ended_at"]
    assert client.get("/v1/scheduler/workers/gpu-1", headers=admin).json()["active_tasks"] == []
    late = report(client, admin, task["id"], "gpu-1", "failed")
    assert late.status_code == 409 and late.json()["code"] == "CONFLICT"


def test_leases_follow_priority_then_fifo_within_free_gpus(client, admin, submit, register, lease):
    register("gpu-1", gpu_count=4)
    big = submit("big", priority=9, gpu=8)  # never fits this worker
    early = submit("early", priority=5, gpu=2)
    late = submit("late", priority=5, gpu=2)
    urgent = submit("urgent", priority=8, gpu=1)
    assert lease("gpu-1")["id"] == urgent["id"]
    assert lease("gpu-1")["id"] == early["id"]
    assert lease("gpu-1") is None  # late needs 2 GPUs, only 1 is free
    held = client.get("/v1/scheduler/workers/gpu-1", headers=admin).json()
    assert held["active_tasks"] == [urgent["id"], early["id"]]
    assert held["slots"]["batch_available"] == 1
    assert get_task(late["id"]).status == "queued" and get_task(big["id"]).status == "queued"


def test_a_task_is_leased_to_exactly_one_of_many_racing_workers(client, admin, submit, register, lease):
    for index in range(4):
        register(f"gpu-{index}")
    only = submit("contended", gpu=1)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lease, [f"gpu-{index}" for index in range(4)]))
    winners = [result for result in results if result is not None]
    assert [w["id"] for w in winners] == [only["id"]]
    holders = [w for w in client.get("/v1/scheduler/workers", headers=admin).json() if w["active_tasks"]]
    assert len(holders) == 1 and holders[0]["active_tasks"] == [only["id"]]


def test_drain_stops_new_leases_and_goes_offline_once_idle(client, admin, submit, register, lease):
    register("gpu-1")
    first = submit("first", gpu=1)
    assert lease("gpu-1")["id"] == first["id"]
    submit("second", gpu=1)
    assert client.delete("/v1/scheduler/workers/gpu-1", headers=admin).status_code == 204
    assert client.get("/v1/scheduler/workers/gpu-1", headers=admin).json()["status"] == "draining"
    assert lease("gpu-1") is None
    report(client, admin, first["id"], "gpu-1", "completed")
    assert client.get("/v1/scheduler/workers/gpu-1", headers=admin).json()["status"] == "offline"
    beat = client.post("/v1/scheduler/workers/gpu-1/heartbeat", headers=admin).json()
    assert beat["status"] == "offline" and lease("gpu-1") is None  # heartbeats do not undo a drain
    register("gpu-1")  # re-registering puts it back to work
    assert lease("gpu-1")["job_name"] == "second"
    assert client.delete("/v1/scheduler/workers/nope", headers=admin).status_code == 404


def test_status_counts_workers_queue_and_reservations(client, admin, submit, register, lease):
    register("gpu-1")
    register("gpu-2")
    client.delete("/v1/scheduler/workers/gpu-2", headers=admin)  # idle: drains straight to offline
    done = submit("done")
    lease("gpu-1")
    report(client, admin, done["id"], "gpu-1", "completed")
    submit("waiting")
    client.post("/v1/jupyter/services", headers=admin, json={"name": "nb"})
    client.post("/v1/scheduler/reservations", headers=admin, json={"gpu_count": 1})
    status = client.get("/v1/scheduler/status", headers=admin).json()
    assert set(status) == STATUS_FIELDS
    assert {k: v for k, v in status.items() if k != "timestamp"} == {
        "workers_total": 2,
        "workers_active": 1,
        "workers_draining": 0,
        "batch_queue_depth": 1,
        "service_queue_depth": 1,
        "tasks_running": 0,
        "tasks_completed_24h": 1,
        "reservations_active": 1,
    }


def test_reservations_are_refused_beyond_capacity(client, admin, register):
    register("gpu-1", gpu_count=4, gpu_type="H100")
    register("gpu-2", gpu_count=2, gpu_type="A100")
    # 2 nodes × 2 GPUs needs two workers: one 4-GPU worker is not that shape.
    shape = client.post(
        "/v1/scheduler/reservations", headers=admin, json={"gpu_count": 2, "node_count": 2, "gpu_type": "H100"}
    )
    assert shape.status_code == 409 and shape.json()["code"] == "CONFLICT"
    register("gpu-3", gpu_count=4, gpu_type="H100")
    first = client.post(
        "/v1/scheduler/reservations", headers=admin, json={"gpu_count": 2, "node_count": 2, "gpu_type": "H100"}
    )
    assert first.status_code == 201
    body = first.json()
    assert set(body) == {"id", "user_id", "gpu_count", "gpu_type", "node_count", "expires_at", "status"}
    assert body["status"] == "active" and body["gpu_count"] == 2 and body["node_count"] == 2
    assert (
        client.post("/v1/scheduler/reservations", headers=admin, json={"gpu_count": 3, "gpu_type": "H100"}).status_code
        == 409
    )
    assert (
        client.post("/v1/scheduler/reservations", headers=admin, json={"gpu_count": 2, "gpu_type": "A100"}).status_code
        == 201
    )
    assert (
        client.post("/v1/scheduler/reservations", headers=admin, json={"gpu_count": 2, "node_count": 2}).status_code
        == 201
    )
    assert client.post("/v1/scheduler/reservations", headers=admin, json={"gpu_count": 1}).status_code == 409
    assert len(client.get("/v1/scheduler/reservations", headers=admin).json()) == 3


def test_racing_reservations_never_overbook(client, admin, register):
    register("gpu-1", gpu_count=3)

    def reserve(_: int) -> int:
        return client.post("/v1/scheduler/reservations", headers=admin, json={"gpu_count": 1}).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(reserve, range(6)))
    assert codes == [201, 201, 201, 409, 409, 409]


def test_reservation_validation(client, admin):
    for body in ({}, {"gpu_count": 0}, {"gpu_count": 1, "node_count": 0}, {"gpu_count": 1, "expires_minutes": 0}):
        response = client.post("/v1/scheduler/reservations", headers=admin, json=body)
        assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"


def test_priority_change_reorders_the_queue(client, admin, submit):
    first = submit("first", priority=5)
    second = submit("second", priority=5)
    response = client.patch(f"/v1/scheduler/jobs/{second['id']}/priority", headers=admin, json={"priority": 9})
    assert response.status_code == 200 and response.json()["priority"] == 9
    assert [e["id"] for e in client.get("/v1/queue", headers=admin).json()["queue"]] == [second["id"], first["id"]]
    assert client.patch("/v1/scheduler/jobs/nope/priority", headers=admin, json={"priority": 3}).status_code == 404
    for body in ({}, {"priority": 0}, {"priority": 11}):
        bad = client.patch(f"/v1/scheduler/jobs/{first['id']}/priority", headers=admin, json=body)
        assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_ERROR"


def test_job_stream_replays_history_and_resumes_after_last_event_id(client, admin, submit, register, lease):
    task = submit("streamed", gpu=1)
    register("gpu-1")
    lease("gpu-1")
    client.patch(f"/v1/scheduler/jobs/{task['id']}/priority", headers=admin, json={"priority": 8})
    report(client, admin, task["id"], "gpu-1", "failed", error="OOM")
    response = client.get(f"/v1/scheduler/jobs/{task['id']}/stream", headers=admin)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [(e["id"], e["event"], e["data"]["status"]) for e in events] == [
        ("1", "state_changed", "queued"),
        ("2", "state_changed", "preparing"),
        ("3", "priority_changed", "preparing"),
        ("4", "state_changed", "failed"),
    ]
    assert events[2]["data"]["priority"] == 8 and events[3]["data"]["error"] == "OOM"
    resumed = sse_events(
        client.get(f"/v1/scheduler/jobs/{task['id']}/stream", headers={**admin, "Last-Event-ID": "2"}).text
    )
    assert [e["id"] for e in resumed] == ["3", "4"]
    assert client.get("/v1/scheduler/jobs/nope/stream", headers=admin).status_code == 404


def test_status_stream_ends_and_resumes_from_audit_sequence(client, admin, submit):
    submit("one")
    submit("two")
    started = time.monotonic()
    response = client.get("/v1/scheduler/status/stream", headers={**admin, "Last-Event-ID": "1"})
    assert time.monotonic() - started < 15
    events = sse_events(response.text)
    assert events[0]["event"] == "status" and set(events[0]["data"]) == STATUS_FIELDS
    assert [(e["id"], e["event"]) for e in events[1:]] == [("2", "job_queued")]
    bad = client.get("/v1/scheduler/status/stream", headers={**admin, "Last-Event-ID": "abc"})
    assert bad.status_code == 400


def test_expired_leases_return_to_the_queue_then_fail_after_retries(client, admin, submit, register, lease):
    task = submit("flaky", gpu=1)
    register("gpu-1")
    assert lease("gpu-1")["id"] == task["id"]

    def expire_now() -> None:
        get_task(task["id"]).update(actions=[TaskRecord.lease_expires_epoch.set(int(time.time()) - 1)])

    expire_now()
    assert invoke("mlworker_leases", scheduled_tick()) == {"batchItemFailures": []}
    requeued = get_task(task["id"])
    assert requeued.status == "queued" and requeued.worker_id is None and requeued.retry_count == 1
    assert get_worker("gpu-1").active_tasks == []

    for _ in range(3):  # max_retries is 3: the fourth expiry fails the task
        assert lease("gpu-1")["id"] == task["id"]
        expire_now()
        workers.expire_leases()
    failed = get_task(task["id"])
    assert failed.status == "failed" and failed.retry_count == 4 and "lease expired" in failed.error


def test_heartbeat_renews_leases_and_reports_cancelled_tasks(client, admin, submit, register, lease):
    kept = submit("kept", gpu=1)
    dropped = submit("dropped", gpu=1)
    register("gpu-1")
    lease("gpu-1")
    lease("gpu-1")
    get_task(kept["id"]).update(actions=[TaskRecord.lease_expires_epoch.set(int(time.time()) + 5)])
    client.delete(f"/v1/tasks/{dropped['id']}", headers=admin)
    beat = client.post("/v1/scheduler/workers/gpu-1/heartbeat", headers=admin).json()
    assert beat["status"] == "active" and beat["stop_tasks"] == [dropped["id"]]
    assert get_task(kept["id"]).lease_expires_epoch > time.time() + 60
    assert get_worker("gpu-1").active_tasks == [kept["id"]]
    assert client.post("/v1/scheduler/workers/nope/heartbeat", headers=admin).status_code == 404


def test_silent_workers_go_offline_and_get_no_work(client, admin, submit, register, lease):
    register("gpu-1")
    submit("waiting", gpu=1)
    get_worker("gpu-1").update(actions=[WorkerRecord.last_heartbeat_epoch.set(int(time.time()) - 600)])
    assert client.get("/v1/scheduler/workers/gpu-1", headers=admin).json()["status"] == "offline"
    assert client.post("/v1/scheduler/workers/gpu-1/lease", headers=admin).status_code == 409
    workers.expire_leases()
    assert get_worker("gpu-1").status == "offline"
    client.post("/v1/scheduler/workers/gpu-1/heartbeat", headers=admin)
    assert lease("gpu-1")["job_name"] == "waiting"
