"""ML worker scheduling on the embedded stack.

    python -m bench.mlworker [--tasks 16] [--workers 8] [--sizes 100,10000] [--sim-tasks 30] [--seed 7]

1. Items DynamoDB reads per request (a botocore hook on the models' clients) for a task page of
   50, the queue, the scheduler status and a page of audit events, at each number of tasks and
   audit events in `--sizes` (seeded by batch writes, with the counters their creation would
   have kept).
2. Enqueue→lease latency, and `--workers` racing workers draining a queue (leases per second and
   lost races), all going for the head (spread 1) and then spread over the first eligible tasks.
3. A seeded mixed workload (sizes 1–8 GPUs, walltimes, arrivals) run through the real lease
   selection and transactions on moto, on a virtual clock: greedy first fit against EASY
   backfill, side by side (utilisation, mean wait, the wait of the large jobs).

Prints numbers; asserts only that no task is leased twice. moto is far slower than DynamoDB:
compare the columns, not the absolute times.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from pynamodb.exceptions import TransactWriteError

from aiplane_local.stack import start_local_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=16, help="tasks submitted in each lease phase")
    parser.add_argument("--workers", type=int, default=8, help="GPU workers racing for leases")
    parser.add_argument("--sizes", default="100,10000", help="task counts for the items-read table")
    parser.add_argument("--sim-tasks", type=int, default=30, help="tasks in the simulated workload")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    stack = start_local_stack(start_dispatchers=False)
    try:
        unlimited()
        items_read([int(size) for size in args.sizes.split(",")])
        racing(args.tasks, args.workers)
        for policy in ("greedy", "easy") if args.sim_tasks else ():
            clear()
            simulate(policy, args.sim_tasks, args.seed)
    finally:
        stack.stop()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * fraction) - 1)]


def unlimited() -> None:
    """One bench user submits everything: lift the per-user GPU limit."""
    from aiplane.mlworker import cluster

    changed = cluster.environment()._replace(mlworker_max_gpus_per_user=1_000_000)
    cluster.environment = lambda: changed


def clear() -> None:
    from aiplane.data.aws import client
    from aiplane.mlworker.models import TABLE_NAME

    dynamodb = client("dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE_NAME, ProjectionExpression="pk, sk"):
        for item in page["Items"]:
            dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": item["pk"], "sk": item["sk"]})


def count_reads(call) -> int:
    from aiplane.mlworker.counters import TaskCountRecord
    from aiplane.mlworker.models import (
        AuditEventRecord,
        AuditHeadRecord,
        JupyterServiceRecord,
        ReservationRecord,
        TaskRecord,
        UsageRecord,
        WorkerRecord,
    )
    from aiplane_local.reads import counting_reads

    with counting_reads(
        TaskRecord,
        TaskCountRecord,
        WorkerRecord,
        ReservationRecord,
        JupyterServiceRecord,
        UsageRecord,
        AuditEventRecord,
        AuditHeadRecord,
    ) as counter:
        call()
    return counter.items


def seed_tasks(count: int, user_id: str) -> None:
    """Queued tasks as create_task writes them, batch-written, and the counts their creation adds."""
    from aiplane.clock import now_iso
    from aiplane.mlworker.counters import TaskCountRecord, user_key
    from aiplane.mlworker.models import TASKS_PARTITION, TaskRecord, task_key, task_status_key, user_status_key
    from aiplane.mlworker.tasks import index_queue

    with TaskRecord.batch_write() as batch:
        for index in range(count):
            task_id, moment = str(uuid.uuid4()), now_iso()
            task = TaskRecord(
                task_key(task_id),
                gsi1pk=TASKS_PARTITION,
                gsi1sk=f"{moment}#{task_id}",
                gsi2pk=task_status_key("queued"),
                gsi2sk=f"{moment}#{task_id}",
                gsi3pk=user_status_key(user_id, "queued"),
                gsi3sk=f"{moment}#{task_id}",
                task_id=task_id,
                job_name=f"seed-{index}",
                status="queued",
                priority=1 + index % 10,
                user_id=user_id,
                created_at=moment,
                gpu=1,
                history=[],
                version=1,
            )
            index_queue(task)
            batch.save(task)
    for key in ("TASKCOUNT#0", user_key(user_id)):
        TaskCountRecord(key, "ALL").update(actions=[TaskCountRecord.queued.add(count)])


def seed_audit_events(count: int) -> None:
    """Audit events as the chain stores them (their hashes are not checked here), batch-written."""
    from aiplane.audit_chain import sequence_key
    from aiplane.clock import now_iso
    from aiplane.mlworker import audit
    from aiplane.mlworker.models import AUDIT_TIME_PARTITION, AuditEventRecord

    with AuditEventRecord.batch_write() as batch:
        for sequence in range(1, count + 1):
            moment = now_iso()
            batch.save(
                AuditEventRecord(
                    audit.CHAIN.partition(audit.CHAIN.shard_of(sequence)),
                    sequence_key(sequence),
                    gsi1sk=sequence_key(sequence),
                    gsi2pk=AUDIT_TIME_PARTITION,
                    gsi2sk=audit.time_key(moment, sequence),
                    sequence_num=sequence,
                    timestamp=moment,
                    event_type="job_queued",
                    user_id="bench",
                    prev_hash="0" * 64,
                    event_hash="0" * 64,
                )
            )


def items_read(sizes: list[int]) -> None:
    from aiplane.identity.principal import Principal
    from aiplane.mlworker import audit, scheduler, tasks

    admin = Principal(id="bench-admin", kind="admin", credential="api_key")
    user = Principal(id="bench-user", kind="user", credential="api_key")
    print("items read per request (DynamoDB items scanned or returned)")
    print(
        f"{'items':>8}  {'GET /v1/tasks?limit=50':>22}  {'(a user)':>8}  {'GET /v1/queue':>13}  {'(a user)':>8}"
        f"  {'GET /v1/scheduler/status':>24}  {'GET /v1/audit/events':>20}  {'(by type)':>9}"
    )
    for size in sizes:
        clear()
        seed_tasks(size // 2, "bench-user")
        seed_tasks(size - size // 2, "someone-else")
        seed_audit_events(size)
        page = count_reads(lambda: tasks.list_tasks(status=None, user_id=None, limit=50, offset=0, principal=admin))
        mine = count_reads(lambda: tasks.list_tasks(status=None, user_id=None, limit=50, offset=0, principal=user))
        queue = count_reads(lambda: tasks.queue_stats(0, admin, tasks.DEFAULT_QUEUE_LIMIT))
        my_queue = count_reads(lambda: tasks.queue_stats(0, user, tasks.DEFAULT_QUEUE_LIMIT))
        status = count_reads(scheduler.status)
        events = count_reads(
            lambda: audit.query_events(start=None, end=None, event_type=None, user_id=None, limit=100, offset=0)
        )
        typed = count_reads(
            lambda: audit.query_events(
                start=None, end=None, event_type="job_started", user_id=None, limit=100, offset=0
            )
        )
        print(f"{size:>8}  {page:>22}  {mine:>8}  {queue:>13}  {my_queue:>8}  {status:>24}  {events:>20}  {typed:>9}")
    print(
        f"  (tasks and audit events; /v1/queue reads its default page of {tasks.DEFAULT_QUEUE_LIMIT} plus the counters;"
        " the audit page of 100 plus the shard heads)"
    )
    clear()


def racing(task_count: int, worker_count: int) -> None:
    from aiplane.mlworker import cluster, tasks, workers
    from aiplane.mlworker.audit import Actor
    from aiplane.mlworker.schemas import CreateTaskRequest, JobStateReport, RegisterWorkerRequest, WorkerCapabilities

    actor = Actor(user_id="bench")
    capabilities = WorkerCapabilities(gpu_count=64, cpu_cores=1024, memory_gb=16384)
    worker_ids = [f"bench-{index}" for index in range(worker_count)]
    for worker_id in worker_ids:
        workers.register_worker(RegisterWorkerRequest(id=worker_id, capabilities=capabilities), actor)

    enqueue_ms, lease_ms = [], []
    for index in range(task_count):
        started = time.perf_counter()
        task = tasks.create_task(CreateTaskRequest(job_name=f"seq-{index}", gpu=1), actor)
        submitted = time.perf_counter()
        workers.heartbeat(worker_ids[0])  # keeps the worker live on a slow embedded stack (not timed)
        lease_started = time.perf_counter()
        leased = cluster.lease_task(worker_ids[0])
        done = time.perf_counter()
        assert leased is not None and leased.task_id == task.task_id
        enqueue_ms.append((submitted - started) * 1000)
        lease_ms.append((done - lease_started) * 1000)
        workers.report_state(
            task.task_id,
            JobStateReport(worker_id=worker_ids[0], status="completed", fencing_token=int(leased.fencing_token)),
        )
    print(
        f"enqueue, {task_count} tasks: median {statistics.median(enqueue_ms):.1f} ms, p95 {percentile(enqueue_ms, 0.95):.1f} ms"
    )
    print(f"lease (queue of 1): median {statistics.median(lease_ms):.1f} ms, p95 {percentile(lease_ms, 0.95):.1f} ms")

    for spread in (1, cluster.LEASE_SPREAD):
        clear()
        race(task_count, worker_ids, capabilities, spread)


def race(task_count: int, worker_ids: list[str], capabilities, spread: int) -> None:
    """`worker_ids` drain `task_count` queued tasks at once; each considers the first `spread`
    eligible tasks (1: every worker goes for the head, as before `cluster.spread`)."""
    from aiplane.errors import ConflictError
    from aiplane.mlworker import cluster, tasks, workers
    from aiplane.mlworker.audit import Actor
    from aiplane.mlworker.schemas import CreateTaskRequest, RegisterWorkerRequest

    actor = Actor(user_id="bench")
    for worker_id in worker_ids:
        workers.register_worker(RegisterWorkerRequest(id=worker_id, capabilities=capabilities), actor)
    for index in range(task_count):
        tasks.create_task(CreateTaskRequest(job_name=f"race-{index}", priority=1 + index % 10, gpu=1), actor)
    latencies: list[float] = []
    lost: list[int] = []
    commit = cluster.commit_lease

    def counted_commit(*args, **kwargs) -> None:
        try:
            commit(*args, **kwargs)
        except TransactWriteError:
            lost.append(1)  # another worker's lease won the conditional write
            raise

    def drain(worker_id: str) -> list[str]:
        mine = []
        while workers.heartbeat(worker_id):
            started = time.perf_counter()
            try:
                task = cluster.lease_task(worker_id)
            except ConflictError:
                refused.append(1)  # its retries outlasted its heartbeat (or SAVE_ATTEMPTS): beat, ask again
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if task is None:
                break
            mine.append(task.task_id)
        return mine

    refused: list[int] = []
    cluster.commit_lease, spread_before = counted_commit, cluster.LEASE_SPREAD
    cluster.LEASE_SPREAD = spread
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(len(worker_ids)) as pool:
            leased_ids = [task_id for batch in pool.map(drain, worker_ids) for task_id in batch]
    finally:
        cluster.commit_lease, cluster.LEASE_SPREAD = commit, spread_before
    elapsed = time.perf_counter() - started
    assert len(leased_ids) == len(set(leased_ids)) == task_count, "a task was leased twice or lost"
    print(
        f"{len(worker_ids)} racing workers, spread over the first {spread} eligible: {task_count} tasks in "
        f"{elapsed:.2f} s, {task_count / elapsed:.2f} leases/s ({len(latencies) / elapsed:.2f} lease calls/s), "
        f"{len(lost)} lost races, {len(refused)} leases given up, lease median {statistics.median(latencies):.0f} ms, "
        f"p95 {percentile(latencies, 0.95):.0f} ms; no task leased twice"
    )


class VirtualClock:
    """Stands in for the `time` module of the scheduling code: the simulation moves it."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


def simulate(policy: str, task_count: int, seed: int) -> None:
    """Two 8-GPU workers; a seeded stream of tasks (mostly small, some whole-node) arriving over time."""
    from aiplane.clock import now_iso
    from aiplane.mlworker import cluster, tasks, workers
    from aiplane.mlworker.audit import Actor
    from aiplane.mlworker.models import TaskRecord
    from aiplane.mlworker.schemas import CreateTaskRequest, JobStateReport, RegisterWorkerRequest, WorkerCapabilities

    rng = random.Random(seed)
    clock = VirtualClock(time.time())
    real_time, lease_ttl_s = cluster.time, workers.LEASE_TTL_S
    cluster.time = workers.time = clock
    workers.LEASE_TTL_S = 10**9  # heartbeats renew leases on the virtual clock, which jumps hours
    actor = Actor(user_id="sim")
    worker_ids = ["sim-1", "sim-2"]
    total_gpus = 16
    for worker_id in worker_ids:
        workers.register_worker(
            RegisterWorkerRequest(id=worker_id, capabilities=WorkerCapabilities(gpu_count=8)), actor
        )
    start = clock.now
    arrivals = []
    moment = start
    for index in range(task_count):
        moment += rng.expovariate(1 / 120)  # one task every 2 minutes on average
        gpu = rng.choice([1, 1, 2, 2, 4, 8, 8])
        walltime = rng.choice([1800, 3600, 5400, 7200])
        runtime = walltime * rng.uniform(0.5, 1.0)
        arrivals.append((moment, index, gpu, walltime, runtime, rng.choice([3, 5, 5, 7])))
    pending = list(arrivals)
    running: dict[str, tuple[float, str, int]] = {}  # task id -> (ends at, worker id, gpu)
    submitted_at: dict[str, float] = {}
    size_of: dict[str, int] = {}
    runtimes: dict[str, float] = {}
    waits: dict[str, float] = {}
    tokens: dict[str, int] = {}  # the fencing token of each task's lease
    busy_gpu_s = 0.0
    last = start
    try:
        while pending or running or len(waits) < task_count:
            # Advance to the next arrival or end.
            upcoming = [pending[0][0]] if pending else []
            upcoming += [end for end, _, _ in running.values()]
            if not upcoming:
                break
            clock.now = min(upcoming)
            busy_gpu_s += sum(gpu for _, _, gpu in running.values()) * (clock.now - last)
            last = clock.now
            for task_id, (end, worker_id, _) in list(running.items()):
                if end <= clock.now:
                    workers.report_state(
                        task_id, JobStateReport(worker_id=worker_id, status="completed", fencing_token=tokens[task_id])
                    )
                    del running[task_id]
            while pending and pending[0][0] <= clock.now:
                arrived, index, gpu, walltime, runtime, priority = pending.pop(0)
                task = tasks.create_task(
                    CreateTaskRequest(job_name=f"sim-{index}", gpu=gpu, walltime=walltime, priority=priority), actor
                )
                task.update(actions=[TaskRecord.created_at.set(now_iso(datetime.fromtimestamp(arrived, UTC)))])
                submitted_at[task.task_id], size_of[task.task_id] = arrived, gpu
                runtimes[task.task_id] = runtime
            for worker_id in worker_ids:
                workers.heartbeat(worker_id)  # on the virtual clock
            for worker_id in worker_ids:
                while True:
                    decision, state = cluster.decide(worker_id, datetime.fromtimestamp(clock.now, UTC), policy)
                    if decision is None:
                        break
                    task = tasks.get_task(decision.task_id)
                    cluster.commit_lease(task, decision, state, 10**9)
                    waits[task.task_id] = clock.now - submitted_at[task.task_id]
                    running[task.task_id] = (clock.now + runtimes[task.task_id], worker_id, int(task.gpu))
                    tokens[task.task_id] = int(task.fencing_token)
    finally:
        cluster.time = workers.time = real_time
        workers.LEASE_TTL_S = lease_ttl_s
    makespan = last - start
    big = [waits[t] for t in waits if size_of[t] >= 8]
    print(
        f"{policy:>6}: {task_count} tasks on 2 × 8 GPUs, makespan {makespan / 3600:.1f} h, "
        f"utilisation {busy_gpu_s / (total_gpus * makespan):.0%}, mean wait {statistics.mean(waits.values()) / 60:.0f} min, "
        f"8-GPU jobs: mean wait {statistics.mean(big) / 60 if big else 0:.0f} min, max {max(big, default=0) / 60:.0f} min"
    )


if __name__ == "__main__":
    main()
