"""The cluster as the scheduler sees it, read from DynamoDB, and the writes of its decisions.

`snapshot` turns the active workers, the tasks they hold and the live reservations into
`backfill.Node`s; `decide` runs the lease selection on it; `commit_lease` writes a decision in
one transaction: the task, every worker of a gang (each conditional on the version read), the
reservation it claims, and the victims it preempts. A transaction that loses a race fails as a
whole, and the caller decides again.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from aiplane.data.models import get_or_none
from aiplane.errors import ConflictError
from aiplane.mlworker import audit, backfill, counters, fairshare, gangs, scheduling, tasks, workers
from aiplane.mlworker.common import connection
from aiplane.mlworker.models import (
    RESERVATIONS_PARTITION,
    ReservationLedger,
    ReservationRecord,
    TaskRecord,
    WorkerRecord,
)
from aiplane.settings import get_settings
from aiplane_shared.environments import Environment, get_environment

LEASE_SPREAD = 8  # how many of the first eligible tasks racing workers spread over (`spread`)
SPREAD_ROTATE_S = 30


def environment() -> Environment:
    return get_environment(get_settings().environment)


def live_reservations(now_epoch: float) -> list[ReservationRecord]:
    """Reservations still holding GPUs (active or claimed, not expired, not released)."""
    return [
        r
        for r in ReservationRecord.by_list.query(RESERVATIONS_PARTITION)
        if r.status in ("active", "claimed") and r.expires_at_epoch > now_epoch
    ]


def ledger() -> ReservationLedger:
    return get_or_none(ReservationLedger, RESERVATIONS_PARTITION, "LEDGER", consistent_read=True) or ReservationLedger()


@dataclass
class Snapshot:
    nodes: list[backfill.Node]
    workers: dict[str, WorkerRecord]
    running: dict[str, TaskRecord]
    reservations: dict[str, ReservationRecord]
    ledger_version: int | None  # read before the reservations: a lease checks it did not move


def snapshot(now_epoch: float) -> Snapshot:
    ledger_version = ledger().version
    taking_work = {
        w.worker_id: w
        for w in workers.list_workers()
        if not w.drained and workers.effective_status(w, now_epoch) == workers.ACTIVE
    }
    running = {t.task_id: t for status in tasks.ACTIVE_STATUSES for t in tasks.tasks_in_status(status)}
    live = {r.reservation_id: r for r in live_reservations(now_epoch)}
    shares: dict[str, list[backfill.Running]] = defaultdict(list)
    for task in running.values():
        started = float(task.leased_epoch or now_epoch)
        for worker_id in tasks.holders(task):
            shares[worker_id].append(
                backfill.Running(
                    task_id=task.task_id,
                    gpu=int(task.gpu or 0),
                    cpu=int(task.cpu or 0),
                    memory_gb=int(task.memory_gb or 0),
                    ends_at=started + tasks.walltime_of(task),
                    user_id=task.user_id,
                    priority=int(task.priority),
                    reservation_id=task.reservation_id,
                    preemptible=bool(task.preemptible),
                    node_count=int(task.node_count or 1),
                )
            )
    holds: dict[str, list[backfill.Hold]] = defaultdict(list)
    for reservation in live.values():
        for worker_id in reservation.workers or []:
            holds[worker_id].append(
                backfill.Hold(
                    reservation.reservation_id, int(reservation.gpu_count), float(reservation.expires_at_epoch)
                )
            )
    nodes = [
        backfill.Node(
            w.worker_id,
            scheduling.Capacity(int(w.gpu_count), int(w.cpu_cores), int(w.memory_gb)),
            tuple(shares[w.worker_id]),
            tuple(holds[w.worker_id]),
            w.gpu_type,
            w.owner_id,
            bool(w.shared),
        )
        for w in sorted(taking_work.values(), key=lambda w: w.worker_id)
    ]
    return Snapshot(nodes, taking_work, running, live, ledger_version)


def decide(
    worker_id: str, now: datetime | None = None, policy: str | None = None, attempt: int | None = None
) -> tuple[backfill.Decision | None, Snapshot]:
    """What `worker_id` should start now, by the environment's policy and limits. With `attempt`
    (a lease's try: 0, 1, ...) racing workers spread over the head of the queue (`spread`);
    without it, the first task the rules allow."""
    now = now or datetime.now(UTC)
    env = environment()
    state = snapshot(now.timestamp())
    demands = []
    for task in tasks.tasks_in_status(tasks.QUEUED):
        demand = tasks.demand_of(task)
        if demand.reservation_id and demand.reservation_id not in state.reservations:
            demand = replace(demand, reservation_id=None)  # its reservation ended: unreserved capacity
        demands.append(demand)
    order = scheduling.queue_order(demands, now, fairshare.factors({d.user_id for d in demands}, now))
    limits = backfill.Limits(
        gpus_per_user=env.mlworker_max_gpus_per_user, preemption_margin=env.mlworker_preemption_margin
    )
    policy = policy or env.mlworker_backfill
    if attempt is None:
        return backfill.plan_lease(worker_id, state.nodes, order, now, policy=policy, limits=limits), state
    candidates = backfill.plan_leases(
        worker_id, state.nodes, order, now, policy=policy, limits=limits, count=LEASE_SPREAD
    )
    if len(candidates) <= 1:
        return (candidates[0] if candidates else None), state
    head = next(demand for demand in order if demand.task_id == candidates[0].task_id)
    able = [
        node.worker_id
        for node in state.nodes  # by the same rules: the workers that could start the head now
        if (start := backfill.plan_lease(node.worker_id, state.nodes, [head], now, policy=policy, limits=limits))
        and not start.victims
    ]
    return spread(worker_id, candidates, able, now, attempt), state


def spread(
    worker_id: str, candidates: list[backfill.Decision], able: list[str], now: datetime, attempt: int
) -> backfill.Decision:
    """Which of the first eligible tasks (`candidates`, in queue order) this worker tries, so that
    racing workers do not all lose the same conditional write: the workers `able` to start the
    first one now take one each, by their rank among them (rotated every `SPREAD_ROTATE_S`, so that
    no worker keeps passing the head over), and a worker that lost a race moves one further. A
    worker alone able to start the head takes the head."""
    if worker_id not in able:
        return candidates[0]
    rank = (sorted(able).index(worker_id) + int(now.timestamp() // SPREAD_ROTATE_S) + attempt) % len(able)
    return candidates[rank % len(candidates)]


def commit_lease(task: TaskRecord, decision: backfill.Decision, state: Snapshot, lease_ttl_s: int) -> None:
    """Write `decision` in one transaction (raises TransactWriteError when anything changed meanwhile)."""
    now = int(time.time())
    reservation = state.reservations.get(task.reservation_id or "")
    tasks.set_status(
        task,
        tasks.PREPARING,
        worker_id=decision.workers[0],
        lease_expires_epoch=now + lease_ttl_s,
        leased_epoch=now,
        error=None,
        fencing_token=int(task.fencing_token or 0) + 1,
        node_assignments=[
            {"node_id": rank, "worker_id": worker_id, "gpu": int(task.gpu or 0), "slot_assigned": rank == 0}
            for rank, worker_id in enumerate(decision.workers)
        ],
    )
    records = {worker_id: state.workers[worker_id] for worker_id in decision.workers}
    for worker_record in records.values():
        worker_record.active_tasks = [*(worker_record.active_tasks or []), task.task_id]
    victims: list[TaskRecord] = []
    usage: list[tuple[str, float]] = []
    for victim in decision.victims:
        victim_record = state.running[victim.task_id]
        usage.append((victim_record.user_id, fairshare.gpu_seconds(victim_record, now)))
        # Requeued as it was (retry count unchanged); its worker is told to stop it.
        tasks.set_status(
            victim_record,
            tasks.QUEUED,
            worker_id=None,
            lease_expires_epoch=None,
            leased_epoch=None,
            started_at=None,
            node_assignments=[],
            error="preempted",
        )
        holder = records[decision.workers[0]]  # victims are single-node tasks of the asking worker
        holder.active_tasks = [t for t in holder.active_tasks if t != victim.task_id]
        holder.stop_requests = [*(holder.stop_requests or []), victim.task_id]
        victims.append(victim_record)
    with TransactWrite(connection=connection()) as transaction:
        transaction.save(task)  # conditional on the version read, as every save below
        for changed in [*records.values(), *victims]:
            transaction.save(changed)
        counters.record_transitions(transaction, [task, *victims], datetime.now(UTC))
        if reservation is not None:
            transaction.update(
                reservation,
                actions=[ReservationRecord.status.set("claimed")],
                condition=ReservationRecord.status.is_in("active", "claimed")
                & (ReservationRecord.expires_at_epoch > now),
            )
        else:
            _ledger_unchanged(transaction, state.ledger_version)
    for user_id, seconds in usage:
        fairshare.add_usage(user_id, seconds, now)
    for requeued in victims:
        audit.append_event(
            "job_queued",
            workers.SYSTEM,
            resource=f"task/{requeued.task_id}",
            action="preempted",
            metadata={"by": task.task_id, "worker_id": decision.workers[0]},
        )


def _ledger_unchanged(transaction: TransactWrite, version: int | None) -> None:
    """A lease outside reservations must not race a reservation being admitted on the same GPUs:
    a reservation bumps the ledger, and this check fails the lease when it moved since the snapshot."""
    condition = ReservationLedger.version.does_not_exist() if version is None else ReservationLedger.version == version
    transaction.condition_check(
        ReservationLedger, ReservationLedger.pk.default, ReservationLedger.sk.default, condition=condition
    )


def enforce_walltime(now_epoch: float | None = None) -> list[str]:
    """Stop tasks past their walltime: they fail with `walltime exceeded` and each of their workers
    gets them in its next heartbeat's `stop_tasks`."""
    now_epoch = now_epoch or time.time()
    stopped: list[str] = []
    for status in tasks.ACTIVE_STATUSES:
        for candidate in tasks.tasks_in_status(status):
            if candidate.leased_epoch is None or candidate.leased_epoch + tasks.walltime_of(candidate) > now_epoch:
                continue
            held: dict[str, Any] = {}

            def stop(task: TaskRecord) -> None:
                held.clear()
                if (
                    task.status not in tasks.ACTIVE_STATUSES
                    or task.leased_epoch is None
                    or task.leased_epoch + tasks.walltime_of(task) > now_epoch
                ):
                    return
                held["workers"] = tasks.holders(task)
                tasks.set_status(task, tasks.FAILED, error="walltime exceeded")

            tasks.mutate_task(candidate.task_id, stop)
            if held:
                for worker_id in held["workers"]:
                    workers.request_stop(worker_id, [candidate.task_id])
                fairshare.charge(candidate, now_epoch)
                audit.append_event(
                    "job_completed",
                    workers.SYSTEM,
                    resource=f"task/{candidate.task_id}",
                    action="walltime_exceeded",
                    success=False,
                    error="walltime exceeded",
                    metadata={"walltime_s": tasks.walltime_of(candidate)},
                )
                stopped.append(candidate.task_id)
    return stopped


def lease_task(worker_id: str) -> TaskRecord | None:
    """Hand the worker its rank of a gang another worker's lease placed on it, else the next task
    the scheduler picks for it (see `backfill`), or None."""
    for attempt in range(workers.SAVE_ATTEMPTS):
        worker = workers.get_worker(worker_id)
        if worker.drained:
            return None  # draining or drained: no new work
        if workers.effective_status(worker) != workers.ACTIVE:
            raise ConflictError(f"worker {worker_id} missed its heartbeats; heartbeat before leasing")
        rank = gangs.undelivered_rank(worker)
        if rank is not None:
            return rank
        decision, state = decide(worker_id, attempt=attempt)
        if decision is None:
            return None
        task = tasks.find_task(decision.task_id)
        if task is None or task.status != tasks.QUEUED or worker_id not in state.workers:
            continue  # the index lagged behind a lease or a cancellation
        try:
            commit_lease(task, decision, state, workers.LEASE_TTL_S)
        except TransactWriteError:
            continue  # another worker took it, or our own record changed: decide again
        tasks.announce_status(task)
        audit.append_event(
            "job_started",
            workers.SYSTEM,
            resource=f"task/{task.task_id}",
            action="lease",
            metadata={"worker_id": worker_id, "workers": list(decision.workers)},
        )
        return tasks.get_task(task.task_id)
    raise ConflictError("the queue is too busy; try again")
