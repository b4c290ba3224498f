"""GPU workers: registration, heartbeats, draining, and leasing tasks.

A worker registers its capacity, then heartbeats and asks for work. A lease hands it the next
task that fits (see `scheduling`); the task and the worker are saved in one transaction, each
conditional on the version read, so a task is never leased twice and a worker's task list never
loses an entry. Leases last `LEASE_TTL_S` and every heartbeat renews them; the scheduled
housekeeping (`expire_leases`) returns tasks of silent workers to the queue.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pynamodb.exceptions import PutError

from aiplane.clock import now_iso
from aiplane.data.models import get_or_404, get_or_none
from aiplane.errors import ConflictError, ForbiddenError, NotFoundError
from aiplane.mlworker import audit, fairshare, scheduling, tasks
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.common import without_none
from aiplane.mlworker.models import META, WORKERS_PARTITION, TaskRecord, WorkerRecord, worker_key
from aiplane.mlworker.schemas import JobStateReport, PluginHealthReport, RegisterWorkerRequest
from aiplane.mlworker.tasks import (
    ACTIVE_STATUSES,
    COLLECTING,
    COMPLETED,
    FAILED,
    PREPARING,
    QUEUED,
    RUNNING,
    TERMINAL_STATUSES,
)

ACTIVE, DRAINING, OFFLINE = "active", "draining", "offline"
LEASE_TTL_S = 120
HEARTBEAT_TIMEOUT_S = 90  # a worker silent this long counts as offline
SAVE_ATTEMPTS = 20
SYSTEM = Actor(user_id="system")
REPORT_ORDER = (PREPARING, RUNNING, COLLECTING, COMPLETED)  # failed may follow any of them


def find_worker(worker_id: str) -> WorkerRecord | None:
    return get_or_none(WorkerRecord, worker_key(worker_id), META, consistent_read=True)


def get_worker(worker_id: str) -> WorkerRecord:
    return get_or_404(
        WorkerRecord, worker_key(worker_id), META, missing=f"worker {worker_id} not found", consistent_read=True
    )


def list_workers() -> list[WorkerRecord]:
    return list(WorkerRecord.by_list.query(WORKERS_PARTITION))


def effective_status(worker: WorkerRecord, now_epoch: float | None = None) -> str:
    silent_s = (now_epoch or time.time()) - int(worker.last_heartbeat_epoch)
    if worker.status == ACTIVE and silent_s > HEARTBEAT_TIMEOUT_S:
        return OFFLINE
    return worker.status


def register_worker(request: RegisterWorkerRequest, actor: Actor, *, admin: bool = False) -> tuple[WorkerRecord, bool]:
    """Register (or re-register after a restart, which also ends a drain); answers the worker
    and whether it is new. The first registration records its owner, `actor` (see `tenancy`);
    another non-admin may not take the id over (409), and only an admin changes `shared` (403)."""
    worker_id = request.id or str(uuid.uuid4())
    capabilities = request.capabilities
    for _ in range(SAVE_ATTEMPTS):
        worker = find_worker(worker_id)
        created = worker is None
        moment = now_iso()
        if worker is None:
            worker = WorkerRecord(
                worker_key(worker_id), gsi1sk=worker_id, worker_id=worker_id, connected_at=moment, active_tasks=[]
            )
        if worker.owner_id is None:  # new, or registered before owners were recorded
            worker.owner_id = actor.user_id
        elif worker.owner_id != actor.user_id and not admin:
            raise ConflictError(f"worker {worker_id} belongs to another owner")
        if request.shared is not None and request.shared != bool(worker.shared):
            if not admin:
                raise ForbiddenError("only an admin may share a worker or stop sharing it")
            worker.shared = request.shared
        worker.last_heartbeat, worker.last_heartbeat_epoch = moment, int(time.time())
        worker.gpu_count, worker.gpu_type = capabilities.gpu_count, capabilities.gpu_type
        worker.cpu_cores, worker.memory_gb = capabilities.cpu_cores, capabilities.memory_gb
        worker.service_slots, worker.status, worker.drained = request.service_slots, ACTIVE, False
        try:
            worker.save()
        except PutError:
            continue
        audit.append_event(
            "auth_attempt",
            actor,
            resource=f"worker/{worker_id}",
            action="register_worker",
            metadata={
                "gpu_count": capabilities.gpu_count,
                "gpu_type": capabilities.gpu_type,
                "owner_id": worker.owner_id,
                "shared": bool(worker.shared),
            },
        )
        return worker, created
    raise ConflictError(f"worker {worker_id} is changing concurrently; try again")


def _mutate_worker(worker_id: str, change) -> WorkerRecord:
    for _ in range(SAVE_ATTEMPTS):
        worker = get_worker(worker_id)
        change(worker)
        try:
            worker.save()
            return worker
        except PutError:
            continue
    raise ConflictError(f"worker {worker_id} is changing concurrently; try again")


def heartbeat(
    worker_id: str, held: dict[str, int] | None = None, plugins: dict[str, PluginHealthReport] | None = None
) -> dict[str, Any]:
    """Record liveness and renew the worker's leases. Answers the tasks it should stop (cancelled,
    handed to another worker meanwhile, or, when the worker lists what it runs in `held` (task id
    -> fencing token), run under a stale or expired lease) so the worker can kill them. `plugins`
    (the health of the plugins its agent runs) replaces what the worker reported before."""
    if plugins is not None:
        from aiplane.mlworker.plugins import check_names  # plugins reads the workers

        check_names(plugins, "plugins")
    requested: list[str] = []

    def beat(worker: WorkerRecord) -> None:
        worker.last_heartbeat, worker.last_heartbeat_epoch = now_iso(), int(time.time())
        if plugins is not None:
            worker.plugin_health = {
                name: {
                    **report.model_dump(exclude_none=True),
                    "reported_at": worker.last_heartbeat,
                    "reported_epoch": worker.last_heartbeat_epoch,
                }
                for name, report in plugins.items()
            }
        if worker.status == OFFLINE and not worker.drained:
            worker.status = ACTIVE
        requested[:], worker.stop_requests = list(worker.stop_requests or []), []

    worker = _mutate_worker(worker_id, beat)
    stop: list[str] = list(requested)
    for task_id in list(worker.active_tasks or []):
        renewed = _renew_lease(task_id, worker_id, None if held is None else held.get(task_id))
        if not renewed:
            stop.append(task_id)
    if stop:
        _release(worker_id, stop)
    stop += [task_id for task_id in (held or {}) if task_id not in (worker.active_tasks or [])]
    return {"status": effective_status(get_worker(worker_id)), "stop_tasks": stop, "lease_ttl_s": LEASE_TTL_S}


def _renew_lease(task_id: str, worker_id: str, token: int | None = None) -> bool:
    """Renew while the lease is the worker's and has not passed (and, given, its token is current)."""
    renewed = {"held": False}

    def renew(task: TaskRecord) -> None:
        renewed["held"] = (
            worker_id in tasks.holders(task)
            and task.status in ACTIVE_STATUSES
            and not _lease_passed(task)
            and (token is None or token == int(task.fencing_token or 0))
        )
        if renewed["held"]:
            task.lease_expires_epoch = int(time.time()) + LEASE_TTL_S

    try:
        tasks.mutate_task(task_id, renew)
    except NotFoundError:
        return False
    return renewed["held"]


def _release(worker_id: str, task_ids: list[str]) -> None:
    def drop(worker: WorkerRecord) -> None:
        worker.active_tasks = [task_id for task_id in (worker.active_tasks or []) if task_id not in task_ids]
        if worker.status == DRAINING and not worker.active_tasks:
            worker.status = OFFLINE  # drained

    try:
        _mutate_worker(worker_id, drop)
    except NotFoundError:
        pass


def request_stop(worker_id: str, task_ids: list[str]) -> None:
    """Take tasks away from a worker (preempted, over walltime): their GPUs are free at once and
    the worker's next heartbeat lists them in `stop_tasks`."""

    def take(worker: WorkerRecord) -> None:
        worker.active_tasks = [task_id for task_id in (worker.active_tasks or []) if task_id not in task_ids]
        worker.stop_requests = [
            *(worker.stop_requests or []),
            *(t for t in task_ids if t not in (worker.stop_requests or [])),
        ]

    try:
        _mutate_worker(worker_id, take)
    except NotFoundError:
        pass


def drain_worker(worker_id: str, actor: Actor) -> WorkerRecord:
    def drain(worker: WorkerRecord) -> None:
        worker.drained = True
        worker.status = DRAINING if worker.active_tasks else OFFLINE

    worker = _mutate_worker(worker_id, drain)
    audit.append_event(
        "scheduler_drain",
        actor,
        resource=f"worker/{worker_id}",
        action="drain",
        metadata={"active_tasks": list(worker.active_tasks or [])},
    )
    return worker


def _held_tasks(worker: WorkerRecord) -> list[TaskRecord]:
    held = (tasks.find_task(task_id) for task_id in worker.active_tasks or [])
    return [
        task
        for task in held
        if task is not None and task.status in ACTIVE_STATUSES and worker.worker_id in tasks.holders(task)
    ]


def free_capacity(worker: WorkerRecord, held: list[TaskRecord] | None = None) -> scheduling.Capacity:
    total = scheduling.Capacity(gpu=int(worker.gpu_count), cpu=int(worker.cpu_cores), memory_gb=int(worker.memory_gb))
    return scheduling.free_capacity(total, map(tasks.demand_of, _held_tasks(worker) if held is None else held))


def log_key(task: TaskRecord) -> str:
    """Where the full log of the task's current lease goes in the artifacts bucket (task_io presigns it)."""
    return f"task-logs/{task.task_id}/{int(task.fencing_token or 0)}.log"


def _lease_passed(task: TaskRecord, now_epoch: float | None = None) -> bool:
    return task.lease_expires_epoch is not None and int(task.lease_expires_epoch) < (now_epoch or time.time())


def report_state(task_id: str, report: JobStateReport) -> TaskRecord:
    """Advance a held task. Refused (409) unless the reporter holds the current lease: same worker,
    the lease's fencing token, not yet expired (a partitioned worker whose task was leased again
    holds an older token), and the status moves forward in the contract's order. A gang's task is
    advanced by its rank-0 worker; the other ranks' reports are checked and acknowledged."""

    def advance(task: TaskRecord) -> None:
        if report.worker_id not in tasks.holders(task) or task.status not in ACTIVE_STATUSES:
            raise ConflictError(f"task {task_id} is not held by worker {report.worker_id}")
        if report.fencing_token != int(task.fencing_token or 0):
            raise ConflictError(
                f"task {task_id}: fencing token {report.fencing_token} is stale; the task was leased again",
                details={"fencing_token": int(task.fencing_token or 0)},
            )
        if _lease_passed(task):
            raise ConflictError(f"task {task_id}: the lease of worker {report.worker_id} has expired")
        if report.status != FAILED and REPORT_ORDER.index(report.status) < REPORT_ORDER.index(task.status):
            raise ConflictError(f"task {task_id} is {task.status}; it cannot go back to {report.status}")
        if report.worker_id != task.worker_id:
            return  # another rank of the gang: its leader reports the task
        fields = {
            name: value
            for name, value in (("output", report.output), ("error", report.error), ("exit_code", report.exit_code))
            if value is not None
        }
        if report.log_uploaded:
            fields["log_key"] = log_key(task)
        tasks.set_status(task, report.status, **fields)
        if report.plugin_status:
            tasks.record_plugin_status(task, report.plugin_status)

    task = tasks.mutate_task(task_id, advance)
    if report.worker_id != task.worker_id:
        return task
    if report.status in TERMINAL_STATUSES:
        fairshare.charge(task)
        _release(report.worker_id, [task_id])
        audit.append_event(
            "job_completed",
            Actor(user_id=report.worker_id),
            resource=f"task/{task_id}",
            action=report.status,
            success=report.status != FAILED,
            error=report.error,
        )
    elif report.status == "running":
        audit.append_event("job_started", Actor(user_id=report.worker_id), resource=f"task/{task_id}", action="run")
    return task


def expire_leases(now_epoch: float | None = None) -> list[str]:
    """Return tasks whose lease ran out to the queue (or fail them once out of retries), and mark
    silent workers offline. Answers the ids of the tasks it touched."""
    now_epoch = now_epoch or time.time()
    expired: list[str] = []
    for status in ACTIVE_STATUSES:
        for candidate in tasks.tasks_in_status(status):
            if candidate.lease_expires_epoch is None or candidate.lease_expires_epoch > now_epoch:
                continue
            outcome: dict[str, Any] = {}

            def requeue(task: TaskRecord) -> None:
                outcome.clear()
                if (
                    task.status not in ACTIVE_STATUSES
                    or task.lease_expires_epoch is None
                    or task.lease_expires_epoch > now_epoch
                ):
                    return  # renewed or finished meanwhile
                outcome["worker_id"] = task.worker_id
                retries = int(task.retry_count or 0) + 1
                if retries > int(task.max_retries or 0):
                    tasks.set_status(task, FAILED, error="lease expired; out of retries", retry_count=retries)
                else:
                    tasks.set_status(
                        task, QUEUED, worker_id=None, lease_expires_epoch=None, started_at=None, retry_count=retries
                    )
                outcome["status"] = task.status

            tasks.mutate_task(candidate.task_id, requeue)
            if outcome:
                expired.append(candidate.task_id)
                if outcome["worker_id"]:
                    _release(outcome["worker_id"], [candidate.task_id])
                event = "job_queued" if outcome["status"] == QUEUED else "job_completed"
                audit.append_event(
                    event,
                    SYSTEM,
                    resource=f"task/{candidate.task_id}",
                    action="lease_expired",
                    success=outcome["status"] == QUEUED,
                    metadata={"worker_id": outcome["worker_id"]},
                )

    def mark_offline(worker: WorkerRecord) -> None:
        if effective_status(worker, now_epoch) == OFFLINE:
            worker.status = OFFLINE

    for worker in list_workers():
        if worker.status == ACTIVE and effective_status(worker, now_epoch) == OFFLINE:
            try:
                _mutate_worker(worker.worker_id, mark_offline)
            except NotFoundError:
                pass
    return expired


def worker_body(worker: WorkerRecord) -> dict[str, Any]:
    status = effective_status(worker)
    free = free_capacity(worker) if status != OFFLINE else scheduling.Capacity(0, 0, 0)
    return {
        "id": worker.worker_id,
        "connected_at": worker.connected_at,
        "last_heartbeat": worker.last_heartbeat,
        "capabilities": without_none(
            {
                "gpu_count": int(worker.gpu_count),
                "gpu_type": worker.gpu_type,
                "cpu_cores": int(worker.cpu_cores),
                "memory_gb": int(worker.memory_gb),
            }
        ),
        "slots": {
            "batch_available": max(0, free.gpu),
            "batch_total": int(worker.gpu_count),
            "service_available": int(worker.service_slots) if status == ACTIVE else 0,
            "service_total": int(worker.service_slots),
        },
        "active_tasks": list(worker.active_tasks or []),
        "status": status,
        "shared": bool(worker.shared),
    }
