"""ML worker scheduling on the embedded stack: enqueue→lease latency and racing workers.

    python -m bench.mlworker [--tasks 40] [--workers 8]

Prints numbers; asserts nothing beyond the invariant that no task is leased twice.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from aiplane_local.stack import start_local_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20, help="tasks submitted in each phase")
    parser.add_argument("--workers", type=int, default=4, help="GPU workers racing for leases")
    args = parser.parse_args()

    stack = start_local_stack(start_dispatchers=False)
    try:
        run(args.tasks, args.workers)
    finally:
        stack.stop()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * fraction) - 1)]


def run(task_count: int, worker_count: int) -> None:
    # Imported after the stack is up: the models bind to the embedded AWS endpoint.
    from aiplane.mlworker import tasks, workers
    from aiplane.mlworker.audit import Actor
    from aiplane.mlworker.schemas import CreateTaskRequest, JobStateReport, RegisterWorkerRequest, WorkerCapabilities

    actor = Actor(user_id="bench")
    capabilities = WorkerCapabilities(gpu_count=64, cpu_cores=1024, memory_gb=16384)
    worker_ids = [f"bench-{index}" for index in range(worker_count)]
    for worker_id in worker_ids:
        workers.register_worker(RegisterWorkerRequest(id=worker_id, capabilities=capabilities), actor)

    # One task at a time: submit, then the first worker leases it.
    enqueue_ms, lease_ms = [], []
    for index in range(task_count):
        started = time.perf_counter()
        task = tasks.create_task(CreateTaskRequest(job_name=f"seq-{index}", gpu=1), actor)
        submitted = time.perf_counter()
        workers.heartbeat(worker_ids[0])  # keeps the worker live on a slow embedded stack (not timed)
        lease_started = time.perf_counter()
        leased = workers.lease_task(worker_ids[0])
        done = time.perf_counter()
        assert leased is not None and leased.task_id == task.task_id
        enqueue_ms.append((submitted - started) * 1000)
        lease_ms.append((done - lease_started) * 1000)
        workers.report_state(task.task_id, JobStateReport(worker_id=worker_ids[0], status="completed"))
    print(f"enqueue, {task_count} tasks: median {statistics.median(enqueue_ms):.1f} ms, p95 {percentile(enqueue_ms, 0.95):.1f} ms")
    print(f"lease (queue of 1): median {statistics.median(lease_ms):.1f} ms, p95 {percentile(lease_ms, 0.95):.1f} ms")

    # A full queue drained by racing workers.
    for index in range(task_count):
        tasks.create_task(CreateTaskRequest(job_name=f"race-{index}", priority=1 + index % 10, gpu=1), actor)

    def drain(worker_id: str) -> list[str]:
        mine = []
        while workers.heartbeat(worker_id) and (task := workers.lease_task(worker_id)) is not None:
            mine.append(task.task_id)
        return mine

    started = time.perf_counter()
    with ThreadPoolExecutor(worker_count) as pool:
        leased_ids = [task_id for batch in pool.map(drain, worker_ids) for task_id in batch]
    elapsed = time.perf_counter() - started
    assert len(leased_ids) == len(set(leased_ids)) == task_count, "a task was leased twice or lost"
    print(f"{worker_count} racing workers drained {task_count} tasks in {elapsed:.2f} s "
          f"({task_count / elapsed:.1f} leases/s), no task leased twice")


if __name__ == "__main__":
    main()
