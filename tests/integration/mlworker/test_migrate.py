"""The migration for items stored before the counters and the gsi3/gsi4/audit-time indexes
(`python -m aiplane.backfill`, the mlworker steps): old-shaped tasks and events are missing from the pages and
the counts until it runs, and are right after; a second run changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from aiplane.clock import now_iso
from aiplane.mlworker import audit, migrate, tasks
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.counters import TaskCountRecord
from aiplane.mlworker.models import TASKS_PARTITION, AuditEventRecord, TaskRecord, task_key, task_status_key
from aiplane.mlworker.schemas import CreateTaskRequest


def old_task(user_id: str, status: str, priority: int = 5, ended: datetime | None = None) -> TaskRecord:
    """A task as the code before the counters wrote it: gsi1 and gsi2 only, no counts."""
    task_id, moment = str(uuid.uuid4()), now_iso()
    task = TaskRecord(
        task_key(task_id),
        gsi1pk=TASKS_PARTITION,
        gsi1sk=f"{moment}#{task_id}",
        gsi2pk=task_status_key(status),
        gsi2sk=f"{moment}#{task_id}",
        task_id=task_id,
        job_name=f"old-{status}",
        status=status,
        priority=priority,
        user_id=user_id,
        created_at=moment,
        ended_at=now_iso(ended) if ended else None,
        history=[],
    )
    task.save()
    return task


def test_the_backfill_puts_old_tasks_and_events_in_the_pages_and_the_counts(client, admin, user_headers):
    me = client.get("/v1/tasks", headers=user_headers, params={"limit": 1})
    user_id = client.post("/v1/tasks", headers=user_headers, json={"job_name": "new"}).json()["user_id"]  # counted
    low, high = old_task(user_id, "queued", priority=2), old_task("someone", "queued", priority=8)
    old_task(user_id, "running")
    old_task(user_id, "completed", ended=datetime.now(UTC))
    old_task("someone", "failed", ended=datetime.now(UTC) - timedelta(days=3))
    event = audit.append_event("file_access", Actor(user_id="old"))
    event.update(actions=[AuditEventRecord.gsi2pk.remove(), AuditEventRecord.gsi2sk.remove()])  # as stored before
    assert me.status_code == 200

    def observed() -> dict:
        mine = client.get("/v1/tasks", headers=user_headers, params={"limit": 10}).json()
        queue = client.get("/v1/queue", headers=admin).json()
        events = client.get("/v1/audit/events", headers=admin, params={"event_type": "file_access"}).json()["events"]
        return {
            "my total": mine["total"],
            "my page": len(mine["tasks"]),
            "queued": queue["queued"],
            "running": queue["running"],
            "completed today": queue["completed"],
            "queue": [entry["id"] for entry in queue["queue"]],
            "old events": len(events),
            "all time": client.get("/v1/tasks", headers=admin, params={"limit": 1}).json()["total"],
        }

    before = observed()
    assert before["my total"] == before["queued"] == before["all time"] == 1 and before["old events"] == 0
    assert high.task_id not in before["queue"]

    assert migrate.tasks_and_counts() == 5 and migrate.audit_time_keys() == 1  # the old tasks; the old event
    after = observed()
    new_id = next(entry for entry in after["queue"] if entry not in (low.task_id, high.task_id))
    assert after == {
        "my total": 4,
        "my page": 4,
        "queued": 3,
        "running": 1,
        "completed today": 1,
        "queue": [high.task_id, new_id, low.task_id],
        "old events": 1,
        "all time": 6,
    }

    counts = [(record.pk, record.sk, record.queued, record.failed) for record in TaskCountRecord.scan()]
    assert migrate.tasks_and_counts() == migrate.audit_time_keys() == 0  # idempotent: nothing left to write
    assert observed() == after
    assert sorted(counts) == sorted((r.pk, r.sk, r.queued, r.failed) for r in TaskCountRecord.scan())
    # New writes keep counting on top of the recomputed counts.
    tasks.create_task(CreateTaskRequest(job_name="after"), Actor(user_id=user_id))
    assert client.get("/v1/queue", headers=admin).json()["queued"] == 4
