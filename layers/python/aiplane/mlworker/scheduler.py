"""Scheduler status and its server-sent event streams.

Streams are bounded: they poll DynamoDB for a short window and then end, so a Lambda behind API
Gateway (which buffers) and every test can finish them; clients reconnect with Last-Event-ID.
- status stream: ids are audit-chain sequence numbers (every scheduler-relevant change is an
  audit event); it opens with a `status` snapshot, then one event per change.
- job stream: ids are positions in the task's history; it ends early once the task has ended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from aiplane.clock import now_iso
from aiplane.errors import ValidationError
from aiplane.identity.principal import Principal
from aiplane.mlworker import audit, counters, jupyter, reservations, tasks, views, workers
from aiplane.mlworker.models import AuditEventRecord

STREAM_WINDOW_S = 3.0
POLL_INTERVAL_S = 0.5


def status() -> dict[str, Any]:
    states = [workers.effective_status(worker) for worker in workers.list_workers()]
    counts = counters.totals()
    return {
        "workers_total": len(states),
        "workers_active": states.count(workers.ACTIVE),
        "workers_draining": states.count(workers.DRAINING),
        "batch_queue_depth": counts[tasks.QUEUED],
        "service_queue_depth": jupyter.starting_count(),
        "tasks_running": sum(counts[s] for s in tasks.ACTIVE_STATUSES),
        "tasks_completed_24h": tasks.completed_since(24),
        "reservations_active": len(reservations.list_active()),
        "timestamp": now_iso(),
    }


def parse_last_event_id(raw: str | None) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError("Last-Event-ID must be an integer event id", param="Last-Event-ID") from None
    if value < 0:
        raise ValidationError("Last-Event-ID must not be negative", param="Last-Event-ID")
    return value


def sse(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines += [f"event: {event}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    return "\n".join(lines) + "\n\n"


class _Visibility:
    """Which audit events a caller's status stream carries: all for admins; for anyone else only
    what they did and what happened to their own tasks (the audit log itself is admin-only)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.own_tasks: dict[str, bool] = {}

    def __call__(self, record: AuditEventRecord) -> bool:
        if self.principal.is_admin or record.user_id == self.principal.id:
            return True
        kind, _, task_id = (record.resource or "").partition("/")
        if kind != "task":
            return False
        if task_id not in self.own_tasks:
            task = tasks.find_task(task_id)
            self.own_tasks[task_id] = task is not None and task.user_id == self.principal.id
        return self.own_tasks[task_id]


def status_events(last_event_id: int | None, principal: Principal, window_s: float = STREAM_WINDOW_S) -> Iterator[str]:
    cursor = audit.head_sequence() if last_event_id is None else last_event_id
    visible = _Visibility(principal)
    yield "retry: 1000\n\n"
    yield sse("status", status(), cursor)
    deadline = time.monotonic() + window_s
    while True:
        for record in audit.events_after(cursor):
            cursor = int(record.sequence_num)
            if visible(record):
                yield sse(record.event_type, views.event_body(record), cursor)
        if time.monotonic() >= deadline:
            return
        time.sleep(POLL_INTERVAL_S)


def job_events(
    task_id: str, last_event_id: int | None, principal: Principal, window_s: float = STREAM_WINDOW_S
) -> Iterator[str]:
    """The job's history after `last_event_id`, then its new changes until it ends or the window closes."""
    tasks.get_own_task(task_id, principal)  # 404 or 403 before the stream starts
    return _job_events(task_id, last_event_id or 0, window_s)


def _job_events(task_id: str, cursor: int, window_s: float) -> Iterator[str]:
    yield "retry: 1000\n\n"
    deadline = time.monotonic() + window_s
    while True:
        task = tasks.get_task(task_id)
        for entry in task.history or []:
            if int(entry["seq"]) > cursor:
                cursor = int(entry["seq"])
                kind = entry.get("event", "state_changed")
                yield sse(kind, {"task_id": task_id, **{k: v for k, v in entry.items() if k != "seq"}}, cursor)
        if task.status in tasks.TERMINAL_STATUSES or time.monotonic() >= deadline:
            return
        time.sleep(POLL_INTERVAL_S)
