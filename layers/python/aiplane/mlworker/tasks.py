"""Tasks: submission, listing, cancellation, priority changes and queue statistics.

A task moves queued → preparing (leased by a worker) → running → collecting → completed | failed;
cancelling ends it as failed. Every change is a save conditional on the version read
(`TaskRecord.version`), so two writers never both win, and is appended to the task's history,
which the job stream replays.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from aiplane.clock import now_iso, parse_iso
from aiplane.data.models import get_or_404, get_or_none
from aiplane.data.pagination import decode_cursor, encode_cursor
from aiplane.errors import ConflictError, ForbiddenError, ValidationError
from aiplane.identity.principal import Principal
from aiplane.live import updates as live_updates
from aiplane.mlworker import audit, counters, fairshare, scheduling
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.common import connection, without_none
from aiplane.mlworker.models import (
    META,
    QUEUE_PARTITION,
    TASKS_PARTITION,
    TaskRecord,
    task_key,
    task_status_key,
    user_status_key,
)
from aiplane.mlworker.schemas import CreateTaskRequest
from aiplane.settings import get_settings
from aiplane_shared.environments import get_environment
from aiplane_shared.families import MLWORKER

QUEUED, PREPARING, RUNNING, COLLECTING, COMPLETED, FAILED = (
    "queued",
    "preparing",
    "running",
    "collecting",
    "completed",
    "failed",
)
ACTIVE_STATUSES = (PREPARING, RUNNING, COLLECTING)  # held by a worker
TERMINAL_STATUSES = (COMPLETED, FAILED)
LIST_STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED)  # the list filter's enum
DEFAULT_LIST_LIMIT = 50
DEFAULT_QUEUE_LIMIT = 100  # tasks of the queue listed by one GET /v1/queue
MAX_LIST_LIMIT = 1000
DEFAULT_MAX_RETRIES = 3
SAVE_ATTEMPTS = 20


def _sort_key(moment: str, task_id: str) -> str:
    return f"{moment}#{task_id}"


def index_queue(task: TaskRecord) -> None:
    """A queued task is in the queue index (gsi4) at its aging origin; any other is not."""
    if task.status != QUEUED:
        task.gsi4pk = task.gsi4sk = None
        return
    origin = scheduling.aging_origin(int(task.priority), parse_iso(task.created_at))
    task.gsi4pk, task.gsi4sk = QUEUE_PARTITION, f"{origin:017.6f}#{task.task_id}"


def set_status(task: TaskRecord, status: str, **fields: Any) -> None:
    """Change a task's status in memory (the caller saves): index keys, times and history."""
    moment = now_iso()
    if not hasattr(task, "_persisted_status"):
        task._persisted_status = counters.persisted_status(task)
    task.status = status
    task.gsi2pk = task_status_key(status)
    task.gsi2sk = _sort_key(moment, task.task_id)
    task.gsi3pk, task.gsi3sk = user_status_key(task.user_id, status), task.gsi1sk
    for name, value in fields.items():
        setattr(task, name, value)
    index_queue(task)
    if status == RUNNING and not task.started_at:
        task.started_at = moment
    if status in TERMINAL_STATUSES:
        task.ended_at = moment
        task.lease_expires_epoch = None
    record_history(task, status=status, at=moment, **{k: v for k, v in fields.items() if k in ("error", "worker_id")})


def announce_status(task: TaskRecord) -> None:
    """Once a status change is saved: its owner's `/ws` gets `task_update` (and `task_complete`
    when the task ended)."""
    update = {"task_id": task.task_id, "status": task.status, "task": task_body(task), "timestamp": now_iso()}
    messages = [{"type": "task_update", **update}]
    if task.status in TERMINAL_STATUSES:
        messages.append({"type": "task_complete", **update})
    live_updates.publish(MLWORKER, task.user_id, messages)


def record_history(task: TaskRecord, **entry: Any) -> None:
    history = list(task.history or [])
    history.append({"seq": len(history) + 1, "priority": int(task.priority), "status": task.status, **entry})
    task.history = history


def create_task(request: CreateTaskRequest, actor: Actor) -> TaskRecord:
    if request.reservation_id is not None:
        from aiplane.mlworker import reservations  # reservations reads the cluster, which reads tasks

        reservations.usable_by(request.reservation_id, actor.user_id, request.gpu, request.node_count)
    task_id = str(uuid.uuid4())
    moment = now_iso()
    task = TaskRecord(
        task_key(task_id),
        gsi1pk=TASKS_PARTITION,
        gsi1sk=_sort_key(moment, task_id),
        gsi2pk=task_status_key(QUEUED),
        gsi2sk=_sort_key(moment, task_id),
        gsi3pk=user_status_key(actor.user_id or "", QUEUED),
        gsi3sk=_sort_key(moment, task_id),
        task_id=task_id,
        job_name=request.job_name,
        status=QUEUED,
        priority=request.priority,
        user_id=actor.user_id or "",
        created_at=moment,
        entrypoint=request.entrypoint,
        args=request.args,
        snapshot_id=request.snapshot_id,
        datasets=list(request.datasets),
        dataset_specs=[spec.model_dump(exclude_none=True) for spec in request.dataset_specs],
        metadata=dict(request.metadata),
        cpu=request.cpu,
        memory_gb=request.memory_gb,
        gpu=request.gpu,
        retry_count=0,
        max_retries=DEFAULT_MAX_RETRIES,
        node_count=request.node_count,
        reservation_id=request.reservation_id,
        walltime_s=request.walltime,
        preemptible=request.preemptible,
        history=[{"seq": 1, "status": QUEUED, "priority": request.priority, "at": moment}],
    )
    index_queue(task)
    save_task(task, condition=TaskRecord.pk.does_not_exist())
    announce_status(task)
    audit.append_event(
        "job_queued",
        actor,
        resource=f"task/{task_id}",
        action="submit",
        metadata={
            "job_name": request.job_name,
            "priority": request.priority,
            "gpu": request.gpu,
            "node_count": request.node_count,
        },
    )
    return task


def find_task(task_id: str) -> TaskRecord | None:
    return get_or_none(TaskRecord, task_key(task_id), META, consistent_read=True)


def get_task(task_id: str) -> TaskRecord:
    return get_or_404(TaskRecord, task_key(task_id), META, missing=f"task {task_id} not found", consistent_read=True)


def save_task(task: TaskRecord, condition: Any = None) -> None:
    """Save (conditional on the version read, and `condition`) with the count changes of its status
    change in the same transaction (`counters`); raises TransactWriteError when another writer won."""
    with TransactWrite(connection=connection()) as transaction:
        transaction.save(task, condition=condition)
        counters.record_transitions(transaction, [task], datetime.now(UTC))
    counters.saved(task)


def mutate_task(task_id: str, change: Callable[[TaskRecord], None]) -> TaskRecord:
    """Apply `change` to a fresh copy and save it conditionally; retry if another writer won.
    `change` raises a domain error to refuse."""
    for _ in range(SAVE_ATTEMPTS):
        task = get_task(task_id)
        before = task.status
        change(task)
        try:
            save_task(task)
            if task.status != before:
                announce_status(task)
            return task
        except TransactWriteError:
            continue
    raise ConflictError(f"task {task_id} is changing concurrently; try again")


def ensure_owner(task: TaskRecord, principal: Principal) -> None:
    """Tasks (and their streams) are seen and changed by their owner and by admins only."""
    if not principal.is_admin and task.user_id != principal.id:
        raise ForbiddenError("this task belongs to another user")


def get_own_task(task_id: str, principal: Principal) -> TaskRecord:
    task = get_task(task_id)
    ensure_owner(task, principal)
    return task


def cancel_task(task_id: str, principal: Principal, actor: Actor) -> TaskRecord:
    def cancel(task: TaskRecord) -> None:
        ensure_owner(task, principal)
        if task.status in TERMINAL_STATUSES:
            raise ConflictError(f"task {task_id} has already ended ({task.status})")
        # The worker still listed as holder learns of the cancellation on its next heartbeat.
        set_status(task, FAILED, error="cancelled")

    task = mutate_task(task_id, cancel)
    audit.append_event(
        "job_completed", actor, resource=f"task/{task_id}", action="cancel", success=False, error="cancelled"
    )
    return task


def change_priority(task_id: str, priority: int, principal: Principal, actor: Actor) -> TaskRecord:
    previous: dict[str, int] = {}

    def reprioritize(task: TaskRecord) -> None:
        ensure_owner(task, principal)
        if task.status in TERMINAL_STATUSES:
            raise ConflictError(f"task {task_id} has already ended ({task.status})")
        previous["priority"] = int(task.priority)
        task.priority = priority
        index_queue(task)
        record_history(task, at=now_iso(), event="priority_changed")

    task = mutate_task(task_id, reprioritize)
    audit.append_event(
        "job_queued",
        actor,
        resource=f"task/{task_id}",
        action="change_priority",
        metadata={"from": previous["priority"], "to": priority},
    )
    return task


def tasks_in_status(status: str, *, since: str | None = None) -> list[TaskRecord]:
    condition = TaskRecord.gsi2sk >= since if since else None
    return list(TaskRecord.by_status.query(task_status_key(status), range_key_condition=condition))


def list_tasks(
    *,
    status: str | None,
    user_id: str | None,
    limit: int,
    offset: int,
    principal: Principal,
    reservation_id: str | None = None,
    node_count: int | None = None,
) -> tuple[list[TaskRecord], int]:
    """Newest first; a non-admin lists only their own tasks; running covers every status a worker
    holds (preparing, running, collecting). A page reads at most `offset + limit` items of each
    index partition it needs, and `total` comes from the counters: a user's tasks from gsi3 (one
    partition per status, by creation), everyone's from gsi1 (by creation) or, with a status, from
    gsi2 (by the time they entered it). `reservation_id` and `node_count` keep only the tasks with
    that value (none for an unknown one); they filter the partition they read."""
    if status is not None and status not in LIST_STATUSES:
        raise ValidationError(f"status must be one of {', '.join(LIST_STATUSES)}", param="status")
    if not principal.is_admin:
        if user_id and user_id != principal.id:
            raise ForbiddenError("only admins list the tasks of other users")
        user_id = principal.id
    if reservation_id is not None or node_count is not None:
        return _filtered(status, user_id, reservation_id, node_count, limit, offset)
    statuses = counters.STATUSES if status is None else ACTIVE_STATUSES if status == RUNNING else (status,)
    bounded: dict[str, Any] = {"limit": offset + limit, "page_size": offset + limit, "scan_index_forward": False}
    if user_id:
        pages = [TaskRecord.by_user_status.query(user_status_key(user_id, one), **bounded) for one in statuses]
        order, counts = (lambda task: task.gsi1sk), counters.totals(user_id)
    elif status is None:
        pages = [TaskRecord.by_created.query(TASKS_PARTITION, **bounded)]
        order, counts = (lambda task: task.gsi1sk), counters.totals()
    else:
        pages = [TaskRecord.by_status.query(task_status_key(one), **bounded) for one in statuses]
        order, counts = (lambda task: task.gsi2sk), counters.totals()
    newest = sorted((task for page in pages for task in page), key=order, reverse=True)
    return newest[offset : offset + limit], sum(counts[one] for one in statuses)


def _filtered(
    status: str | None, user_id: str | None, reservation_id: str | None, node_count: int | None, limit: int, offset: int
) -> tuple[list[TaskRecord], int]:
    condition = None
    for clause in (
        TaskRecord.user_id == user_id if user_id else None,
        TaskRecord.reservation_id == reservation_id if reservation_id is not None else None,
        TaskRecord.node_count == node_count if node_count is not None else None,
    ):
        if clause is not None:
            condition = clause if condition is None else condition & clause
    if status is None:
        matching = list(
            TaskRecord.by_created.query(TASKS_PARTITION, filter_condition=condition, scan_index_forward=False)
        )
    else:
        statuses = ACTIVE_STATUSES if status == RUNNING else (status,)
        matching = [
            task
            for one in statuses
            for task in TaskRecord.by_status.query(task_status_key(one), filter_condition=condition)
        ]
        matching.sort(key=lambda task: task.gsi1sk, reverse=True)
    return matching[offset : offset + limit], len(matching)


def record_plugin_status(task: TaskRecord, reports: dict[str, Any]) -> None:
    """Store the sidecar health a worker reported (each plugin must be in the catalog: 400 otherwise)."""
    from aiplane.mlworker.plugins import CATALOG  # plugins reads workers, which read tasks

    unknown = sorted(set(reports) - set(CATALOG))
    if unknown:
        raise ValidationError(f"unknown plugins in plugin_status: {', '.join(unknown)}", param="plugin_status")
    checked = now_iso()
    task.plugin_status = {
        **(task.plugin_status or {}),
        **{
            name: without_none({"name": name, "status": report.status, "url": report.url, "last_check": checked})
            for name, report in reports.items()
        },
    }


def walltime_of(task: TaskRecord) -> float:
    return float(task.walltime_s or get_environment(get_settings().environment).mlworker_default_walltime_s)


def holders(task: TaskRecord) -> list[str]:
    """The workers a leased task runs on, by rank."""
    if task.node_assignments:
        return [str(node["worker_id"]) for node in task.node_assignments]
    return [task.worker_id] if task.worker_id else []


def demand_of(task: TaskRecord) -> scheduling.Demand:
    return scheduling.Demand(
        task_id=task.task_id,
        priority=int(task.priority),
        submitted_at=parse_iso(task.created_at),
        gpu=int(task.gpu or 0),
        cpu=int(task.cpu or 0),
        memory_gb=int(task.memory_gb or 0),
        user_id=task.user_id,
        node_count=int(task.node_count or 1),
        walltime_s=walltime_of(task),
        reservation_id=task.reservation_id,
        preemptible=bool(task.preemptible),
    )


def queue_stats(active_workers: int, principal: Principal, limit: int, cursor: str | None = None) -> dict[str, Any]:
    """The counts (from the counters) and one page of the queue: `limit` queued tasks read from the
    queue index in aged-priority order, ordered within the page as the scheduler orders them (fair
    share and FIFO among equal levels). Positions count from the queue's head; a non-admin's page
    lists only their own tasks of those read (possibly none, with a cursor to read on)."""
    now = datetime.now(UTC)
    start, key = _queue_cursor(cursor)
    results = TaskRecord.in_queue.query(QUEUE_PARTITION, limit=limit, page_size=limit, last_evaluated_key=key)
    read = {task.task_id: task for task in results}
    shares = fairshare.factors({task.user_id for task in read.values()}, now)
    ordered = [read[demand.task_id] for demand in scheduling.queue_order(map(demand_of, read.values()), now, shares)]
    counts = counters.totals()
    today = counters.ended_since(now.replace(hour=0, minute=0, second=0, microsecond=0))
    following = results.last_evaluated_key
    return {
        "queued": counts[QUEUED],
        "running": sum(counts[status] for status in ACTIVE_STATUSES),
        "completed": today[COMPLETED],
        "failed": today[FAILED],
        "workers": active_workers,
        # Beyond QueueStats: a page of the queue itself, in scheduling order, and the next page's cursor.
        "queue": [
            {
                "position": position,
                "id": task.task_id,
                "job_name": task.job_name,
                "priority": int(task.priority),
                "priority_aged": priority_aged(task, now),
                "gpu": int(task.gpu or 0),
                "user_id": task.user_id,
                "created_at": task.created_at,
            }
            for position, task in enumerate(ordered, start=start + 1)
            if principal.is_admin or task.user_id == principal.id
        ],
        "next_cursor": encode_cursor({"key": following, "position": start + len(ordered)}) if following else None,
    }


def _queue_cursor(cursor: str | None) -> tuple[int, dict[str, Any] | None]:
    """(tasks before the page, the index key to read on from) of a `/v1/queue` cursor."""
    value = decode_cursor(cursor)
    if value is None:
        return 0, None
    position, key = value.get("position"), value.get("key")
    if not isinstance(position, int) or position < 0 or not isinstance(key, dict):
        raise ValidationError("cursor is not valid", param="cursor")
    return position, key


def completed_since(hours: int) -> int:
    """Tasks completed in the last `hours` whole hours and the current one (hour buckets)."""
    return counters.ended_since(datetime.now(UTC) - timedelta(hours=hours))[COMPLETED]


def priority_aged(task: TaskRecord, now: datetime | None = None) -> float:
    if task.status != QUEUED:
        return float(task.priority)
    return round(scheduling.aged_priority(int(task.priority), parse_iso(task.created_at), now or datetime.now(UTC)), 3)


def task_body(task: TaskRecord) -> dict[str, Any]:
    return without_none(
        {
            "id": task.task_id,
            "job_name": task.job_name,
            "status": task.status,
            "priority": int(task.priority),
            "created_at": task.created_at,
            "started_at": task.started_at,
            "ended_at": task.ended_at,
            "worker_id": task.worker_id,
            "error": task.error,
            "output": task.output,
            "entrypoint": task.entrypoint,
            "exit_code": None if task.exit_code is None else int(task.exit_code),
            "snapshot_id": task.snapshot_id,
            "datasets": list(task.datasets or []),
            "cpu": int(task.cpu or 0),
            "memory_gb": int(task.memory_gb or 0),
            "gpu": int(task.gpu or 0),
            "user_id": task.user_id,
            "retry_count": int(task.retry_count or 0),
            "max_retries": int(task.max_retries or 0),
            "plugin_status": dict(task.plugin_status or {}),  # only what the worker's health checks reported
            # The workers holding it now, by rank (empty unless a worker holds it).
            "node_assignments": [
                {"node_id": int(n["node_id"]), "worker_id": n["worker_id"], "slot_assigned": bool(n["slot_assigned"])}
                for n in task.node_assignments or []
            ]
            if task.status in ACTIVE_STATUSES
            else [],
            "priority_aged": priority_aged(task),
            # Beyond the contract's Task: the scheduling fields of the submission.
            "node_count": int(task.node_count or 1),
            "reservation_id": task.reservation_id,
            "walltime": int(walltime_of(task)),
            "preemptible": bool(task.preemptible),
        }
    )


def work_body(task: TaskRecord, worker_id: str | None = None) -> dict[str, Any]:
    """What a worker needs to run a leased task (the Task plus the submission's inputs, and the
    worker's rank in the task's nodes)."""
    ranks = [int(n["node_id"]) for n in task.node_assignments or [] if n["worker_id"] == worker_id]
    return {
        **task_body(task),
        "args": task.args,
        "dataset_specs": task.dataset_specs or [],
        "metadata": task.metadata or {},
        "lease_expires_epoch": int(task.lease_expires_epoch or 0),
        "rank": ranks[0] if ranks else 0,
    }
