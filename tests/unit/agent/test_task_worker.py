"""The mlworker component against a scripted control plane: reports in order, and every way a
task's process is stopped (stop_tasks, a refused report, a lease that could not be renewed)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
from aiplane_agent.api import ApiError
from aiplane_agent.components import AgentContext
from aiplane_agent.config import AgentConfig
from aiplane_agent.inventory import Inventory
from aiplane_agent.runners.process import ProcessRunner
from aiplane_agent.tasks import LEASE_FILE, TaskWorker


class ScriptedApi:
    def __init__(self) -> None:
        self.queue: list[dict] = []
        self.reports: list[tuple[str, dict]] = []
        self.stop_tasks: list[str] = []
        self.unreachable = False
        self.refuse_reports = False
        self.plugins: list[dict] = []

    def register_worker(self, worker_id, capabilities, service_slots):
        return {"id": worker_id}

    def worker_heartbeat(self, worker_id, leases, plugins=None):
        if self.unreachable:
            raise httpx.ConnectError("partitioned")
        self.plugins.append(plugins)
        return {"status": "active", "stop_tasks": self.stop_tasks, "lease_ttl_s": 1}

    def lease(self, worker_id):
        if self.unreachable:
            raise httpx.ConnectError("partitioned")
        return self.queue.pop(0) if self.queue else None

    def report_task(self, task_id, report):
        if self.refuse_reports:
            raise ApiError(409, '{"error": "stale fencing token", "code": "CONFLICT"}')
        self.reports.append((task_id, report))
        return {"id": task_id, "status": report["status"]}

    def put_presigned(self, url, content):
        raise AssertionError("no upload URL was handed out")


def worker(tmp_path: Path, api: ScriptedApi) -> TaskWorker:
    config = AgentConfig(
        credential="c",
        mlworker_url="http://127.0.0.1:1",
        state_dir=tmp_path,
        heartbeat_s=0.05,
        poll_s=0.05,
        task_grace_s=1,
    )
    ctx = AgentContext(
        config=config,
        api=api,
        runner=ProcessRunner(),
        inventory=Inventory([], 2, 2, 4),
        instance_id="i-1",
        worker_id="w-1",
        url="http://127.0.0.1:1",
        state_dir=tmp_path,
    )
    return TaskWorker(ctx)


def lease(task_id: str, entrypoint: str, token: int = 1, **fields) -> dict:
    return {"id": task_id, "entrypoint": entrypoint, "fencing_token": token, "gpu": 0, **fields}


def run_until(component: TaskWorker, condition, timeout_s: float = 15):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        component.tick(component.ctx)
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def pid_of(path: Path) -> int:
    return int(path.read_text()) if path.exists() and path.read_text().strip() else 0


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"


def test_reports_in_order_with_the_token_exit_code_and_output_tail(tmp_path):
    api = ScriptedApi()
    api.queue.append(lease("t-ok", '/bin/bash -c "echo hello; echo world"', token=7))
    component = worker(tmp_path, api)
    run_until(component, lambda: len(api.reports) == 3)
    assert [report["status"] for _, report in api.reports] == ["running", "collecting", "completed"]
    assert all(report["fencing_token"] == 7 and report["worker_id"] == "w-1" for _, report in api.reports)
    final = api.reports[-1][1]
    assert final["exit_code"] == 0 and final["output"] == "hello\nworld\n" and final["log_uploaded"] is False
    assert not (tmp_path / "tasks" / "t-ok").exists()  # its working dir is cleaned up


def test_stop_tasks_in_a_heartbeat_answer_kills_the_process(tmp_path):
    api = ScriptedApi()
    pid_file = tmp_path / "pid"
    api.queue.append(lease("t-cancel", f'/bin/bash -c "echo $$ > {pid_file}; exec sleep 300"'))
    component = worker(tmp_path, api)
    run_until(component, lambda: pid_of(pid_file))
    api.stop_tasks = ["t-cancel"]
    run_until(component, lambda: gone(pid_of(pid_file)) and component.running_work() == 0)
    assert [report["status"] for _, report in api.reports] == ["running"]  # nothing after the stop


def test_a_lease_that_cannot_be_renewed_stops_the_process(tmp_path):
    api = ScriptedApi()
    pid_file = tmp_path / "pid"
    api.queue.append(lease("t-partitioned", f'/bin/bash -c "echo $$ > {pid_file}; exec sleep 300"'))
    component = worker(tmp_path, api)
    run_until(component, lambda: pid_of(pid_file))
    api.unreachable = True  # the lease TTL (1 s here) passes without a renewal
    run_until(component, lambda: gone(pid_of(pid_file)) and component.running_work() == 0)


def test_a_refused_report_stops_the_task(tmp_path):
    api = ScriptedApi()
    api.refuse_reports = True
    pid_file = tmp_path / "pid"
    api.queue.append(lease("t-stale", f'/bin/bash -c "echo $$ > {pid_file}; exec sleep 300"'))
    component = worker(tmp_path, api)
    run_until(component, lambda: component.running_work() == 0)  # "running" was refused: stopped at once
    time.sleep(0.2)
    assert not pid_of(pid_file) or gone(pid_of(pid_file))
    assert api.reports == []


def test_leases_left_by_a_previous_run_are_reported_failed(tmp_path):
    left = tmp_path / "tasks" / "t-old"
    left.mkdir(parents=True)
    (left / LEASE_FILE).write_text(json.dumps({"task_id": "t-old", "fencing_token": 3}))
    api = ScriptedApi()
    component = worker(tmp_path, api)
    component.tick(component.ctx)
    assert api.reports == [
        (
            "t-old",
            {
                "worker_id": "w-1",
                "status": "failed",
                "fencing_token": 3,
                "error": "the agent restarted while the task ran",
            },
        )
    ]
    assert not left.exists()


def test_no_entrypoint_fails_the_task_with_the_reason(tmp_path):
    api = ScriptedApi()
    api.queue.append({"id": "t-none", "fencing_token": 1, "entrypoint": None})
    component = worker(tmp_path, api)
    run_until(component, lambda: api.reports)
    assert api.reports[0][1]["status"] == "failed" and "no entrypoint" in api.reports[0][1]["error"]


def test_heartbeats_carry_what_the_components_check_of_their_plugins(tmp_path):
    api = ScriptedApi()
    component = worker(tmp_path, api)
    component.ctx.plugin_health = lambda: {
        "jupyter": {"status": "unhealthy", "error": "jupyter-server is not installed"}
    }
    run_until(component, lambda: api.plugins)
    assert api.plugins[0] == {"jupyter": {"status": "unhealthy", "error": "jupyter-server is not installed"}}
