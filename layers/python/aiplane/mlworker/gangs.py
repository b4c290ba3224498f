"""Gangs: a task with `node_count > 1` runs on that many workers at once.

The lease that places a gang (one transaction, see `cluster.commit_lease`) adds the task to every
chosen worker's task list and records `node_assignments` [{node_id: rank, worker_id, gpu,
slot_assigned}]. The asking worker gets rank 0 at once; every other worker gets its rank from its
own next lease, which marks its slot assigned. Rank 0 reports the task's state; every rank's
heartbeat renews the lease.
"""

from __future__ import annotations

from aiplane.errors import NotFoundError
from aiplane.mlworker import tasks
from aiplane.mlworker.models import TaskRecord, WorkerRecord


def rank_of(task: TaskRecord, worker_id: str) -> int | None:
    for node in task.node_assignments or []:
        if node["worker_id"] == worker_id:
            return int(node["node_id"])
    return None


def undelivered_rank(worker: WorkerRecord) -> TaskRecord | None:
    """A gang rank placed on `worker` that it has not received yet, now marked delivered."""
    for task_id in worker.active_tasks or []:
        task = tasks.find_task(task_id)
        if task is None or task.status not in tasks.ACTIVE_STATUSES:
            continue
        if not any(n["worker_id"] == worker.worker_id and not n["slot_assigned"] for n in task.node_assignments or []):
            continue
        delivered = {"now": False}

        def assign(fresh: TaskRecord) -> None:
            nodes = [dict(n) for n in fresh.node_assignments or []]
            for node in nodes:
                if node["worker_id"] == worker.worker_id and not node["slot_assigned"]:
                    node["slot_assigned"] = delivered["now"] = True
            fresh.node_assignments = nodes

        try:
            fresh = tasks.mutate_task(task_id, assign)
        except NotFoundError:
            continue
        if delivered["now"]:
            return fresh
    return None
