"""The local agent: time from POST /mlworker/v1/tasks to `running` and to `completed` for a
trivial task (`/bin/bash -c "echo hello"`), median of 20 (printed, not a timed test).

    .venv/bin/python bench/agent.py [--runs 20]

Everything real but AWS: the local HTTP server, the agent process `make run` starts (it leases
every 0.2 s and reports through the API), the process runner, the log upload to moto S3.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # functions/ lives at the repository root
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))

from aiplane_local.stack import free_port, start_local_stack

POLL_S = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    stack = start_local_stack(free_port(), start_dispatchers=False)
    import httpx

    from aiplane_local.gpu_agents import LocalAgent
    from aiplane_local.server import BackgroundServer, build_root_app

    server = BackgroundServer(build_root_app())
    base = f"{server.base_url}/mlworker"
    admin_key = stack.bootstrap["admin-api-key"]
    agent = LocalAgent(base, admin_key)
    api = httpx.Client(base_url=base, headers={"X-API-Key": admin_key}, timeout=60)
    try:
        to_running, to_completed = [], []
        for _ in range(args.runs + 1):  # the first run warms the agent's registration and the Lambdas up
            started = time.perf_counter()
            task_id = api.post(
                "/v1/tasks", json={"job_name": "bench", "entrypoint": '/bin/bash -c "echo hello"'}
            ).json()["id"]
            running_at = None
            while (task := api.get(f"/v1/tasks/{task_id}").json())["status"] not in ("completed", "failed"):
                if running_at is None and task["status"] in ("running", "collecting"):
                    running_at = time.perf_counter()
                time.sleep(POLL_S)
            assert task["status"] == "completed" and "hello" in task["output"], task
            done_at = time.perf_counter()
            to_running.append((running_at or done_at) - started)  # a run this short may end between two polls
            to_completed.append(done_at - started)
        print(f"local agent, trivial task, median of {args.runs}:")
        print(f"  submit -> running   {statistics.median(to_running[1:]) * 1000:8.1f} ms")
        print(f"  submit -> completed {statistics.median(to_completed[1:]) * 1000:8.1f} ms")
    finally:
        agent.stop()
        server.stop()
        stack.stop()


if __name__ == "__main__":
    main()
