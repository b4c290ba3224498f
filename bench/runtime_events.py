"""Runtime events on the embedded stack: sandboxed function runs, event appends, and a concurrent
lease race.

    python -m bench.runtime_events [--runs 50] [--jobs 100] [--threads 16]

Prints numbers; asserts nothing beyond the invariant that no job is ever leased twice.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from aiplane_local.stack import start_local_stack


def timed(count: int, action: Callable[[], object]) -> str:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        latencies.append((time.perf_counter() - started) * 1000)
    return f"median {statistics.median(latencies):.1f} ms, p95 {sorted(latencies)[int(count * 0.95) - 1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50, help="function runs and event appends")
    parser.add_argument("--jobs", type=int, default=100, help="jobs in the lease race")
    parser.add_argument("--threads", type=int, default=16, help="concurrent leasers")
    args = parser.parse_args()

    stack = start_local_stack(start_dispatchers=False)
    try:
        run(args.runs, args.jobs, args.threads)
    finally:
        stack.stop()


def run(runs: int, job_count: int, threads: int) -> None:
    # Imported after the stack is up: the models bind to the embedded AWS endpoint.
    from aiplane.errors import NotFoundError
    from aiplane.events import jobs, sandbox, store

    script = "console.log(event.n); var total = 0; for (var i = 0; i < 1000; i++) { total += i; } total + event.n"
    print(
        f"sandboxed function run (fork + QuickJS), {runs} runs: "
        + timed(runs, lambda: sandbox.run(script, {"n": 1}, {}, timeout_s=10))
    )
    builtin = "sendEvent('x', 1)"
    print(
        f"function run with one built-in call, {runs} runs: "
        + timed(runs, lambda: sandbox.run(builtin, {}, {"sendEvent": lambda *a: None}, timeout_s=10))
    )
    event_type = f"bench-{uuid.uuid4().hex[:8]}"
    body = {"event_type": event_type, "aggregate_type": "bench", "aggregate_id": "1", "version": 1, "data": {}}
    print(f"event append (store + bus), {runs} appends: " + timed(runs, lambda: store.append_event(body)))

    kind = f"bench-{uuid.uuid4().hex[:8]}"
    for _ in range(job_count):
        jobs.create_job(kind)

    def attempt(n: int) -> str | None:
        try:
            return jobs.lease(f"w{n % threads}", "30s", [kind])["id"]
        except NotFoundError:
            return None

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(attempt, range(job_count + threads)))
    elapsed = time.perf_counter() - started
    leased = [job_id for job_id in outcomes if job_id]
    assert len(leased) == len(set(leased)) == job_count, "a job was leased twice or left behind"
    print(
        f"lease race, {job_count + threads} requests on {job_count} jobs with {threads} threads: {len(leased)} leased, "
        f"{elapsed:.2f} s ({(job_count + threads) / elapsed:.0f} requests/s)"
    )


if __name__ == "__main__":
    main()
