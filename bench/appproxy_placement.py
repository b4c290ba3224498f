"""Circuit placement on the embedded stack: sequential latency and a concurrent race for slots.

    python -m bench.appproxy_placement [--ports 50] [--threads 16]

Prints numbers; asserts nothing beyond the invariant that no slot is ever shared.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from aiplane_local.stack import start_local_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", type=int, default=50, help="ports of the benchmark worker")
    parser.add_argument("--threads", type=int, default=16, help="concurrent requests in the race")
    args = parser.parse_args()

    stack = start_local_stack(start_dispatchers=False)
    try:
        run(args.ports, args.threads)
    finally:
        stack.stop()


def run(ports: int, threads: int) -> None:
    # Imported after the stack is up: the models bind to the embedded AWS endpoint.
    from aiplane.appproxy.circuits import CircuitSpec, place_circuit, remove_circuit
    from aiplane.appproxy.schemas import WorkerRequest
    from aiplane.appproxy.workers import deregister_worker, held_slots, register_worker
    from aiplane.errors import UnavailableError

    worker = register_worker(
        WorkerRequest(
            authority="bench.example",
            frontend_mode="port",
            protocol="http",
            hostname="bench.example",
            use_tls=False,
            api_port=6001,
            port_range=[30000, 30000 + ports - 1],
            filtered_apps_only=False,
            app_filters=[],
        )
    )

    def spec() -> CircuitSpec:
        session_id = str(uuid.uuid4())
        return CircuitSpec(
            app="bench",
            protocol="http",
            app_mode="interactive",
            route_info=[
                {
                    "session_id": session_id,
                    "session_name": None,
                    "kernel_host": "10.0.0.1",
                    "kernel_port": 8000,
                    "protocol": "http",
                    "traffic_ratio": 1.0,
                }
            ],
        )

    latencies = []
    placed = []
    for _ in range(ports):
        started = time.perf_counter()
        placed.append(place_circuit(spec())[0])
        latencies.append((time.perf_counter() - started) * 1000)
    print(
        f"sequential placement, {ports} ports: median {statistics.median(latencies):.1f} ms, "
        f"p95 {sorted(latencies)[int(len(latencies) * 0.95) - 1]:.1f} ms"
    )
    for circuit in placed:
        remove_circuit(circuit)

    def attempt(_: int) -> bool:
        try:
            place_circuit(spec())
            return True
        except UnavailableError:
            return False

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(attempt, range(ports * 2)))
    elapsed = time.perf_counter() - started
    held = held_slots(worker.worker_id)
    assert len({int(slot.port) for slot in held}) == len(held) == ports, "a slot was shared"
    print(
        f"race, {ports * 2} requests on {ports} ports with {threads} threads: {sum(outcomes)} placed, "
        f"{outcomes.count(False)} refused, {elapsed:.2f} s ({ports * 2 / elapsed:.0f} requests/s)"
    )
    deregister_worker(worker.worker_id)


if __name__ == "__main__":
    main()
