"""The mlworker component: registers this host as a scheduler worker, heartbeats (renewing its
leases, each with its fencing token), leases tasks that fit, and runs each one in a thread of its
own through the runner:

    preparing (leased; datasets fetched and checked) -> running (process started)
    -> collecting (process ended; full log uploaded to the URL the API presigned) -> completed | failed

A task is stopped (process group killed, nothing more reported) when a heartbeat answers it in
`stop_tasks` (cancelled, or leased to another worker), when the API refuses its report (the
lease passed or its token is stale), or when its lease runs out here because the API could not
be reached to renew it. Leases in flight are kept in the state dir; after a restart the agent
reports them failed (their processes died with it).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from aiplane_agent.api import ApiError
from aiplane_agent.components import AgentContext, BaseComponent
from aiplane_agent.log import log
from aiplane_agent.runners import Execution, RunSpec

TASKS_DIR = "tasks"
LEASE_FILE = "lease.json"
LOG_FILE = "output.log"
POLL_PROCESS_S = 0.1
DEFAULT_LEASE_TTL_S = 120.0  # until the first heartbeat says otherwise


class TaskStopped(Exception):
    """The task was stopped here (see the module docstring); no more reports."""


class DatasetError(Exception):
    pass


def command_of(lease: dict[str, Any]) -> list[str]:
    """The entrypoint (a shell-like command line) followed by the task's args."""
    entrypoint = lease.get("entrypoint")
    if not entrypoint:
        raise ValueError("the task has no entrypoint")
    return shlex.split(entrypoint) + shlex.split(lease.get("args") or "")


def output_tail(log_path: Path, limit: int) -> str:
    with open(log_path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - limit))
        return handle.read().decode("utf-8", errors="replace")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TaskRun:
    """One leased task, from preparing to its last report."""

    def __init__(self, worker: TaskWorker, lease: dict[str, Any], gpu_indices: tuple[int, ...]) -> None:
        self.worker = worker
        self.ctx = worker.ctx
        self.lease = lease
        self.task_id: str = lease["id"]
        self.token = int(lease["fencing_token"])
        self.gpu_indices = gpu_indices
        self.directory = worker.tasks_dir / self.task_id
        self.log_path = self.directory / LOG_FILE
        self.execution: Execution | None = None
        self.stop_reason: str | None = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"task-{self.task_id}", daemon=True)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / LEASE_FILE).write_text(json.dumps({"task_id": self.task_id, "fencing_token": self.token}))
        self.thread.start()

    def stop(self, reason: str) -> None:
        """Stop the process (if any) and make the run end without reporting."""
        with self.lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            execution = self.execution
        if execution is not None:
            execution.stop(self.ctx.config.task_grace_s)
        log("task stopped", task_id=self.task_id, reason=reason)

    def abandon(self, error: str) -> None:
        """The agent stops: stop the process and say so, while the lease is still ours."""
        self.stop(error)
        try:
            self.ctx.api.report_task(
                self.task_id,
                {"worker_id": self.ctx.worker_id, "status": "failed", "fencing_token": self.token, "error": error},
            )
        except (ApiError, httpx.HTTPError):
            pass

    def _check(self) -> None:
        if self.stop_reason is not None:
            raise TaskStopped(self.stop_reason)

    def report(self, status: str, **fields: Any) -> dict[str, Any]:
        self._check()
        body = {"worker_id": self.ctx.worker_id, "status": status, "fencing_token": self.token, **fields}
        try:
            return self.ctx.api.report_task(self.task_id, body)
        except ApiError as error:
            if error.status_code in (404, 409):  # the lease is no longer ours: stop, report nothing more
                self.stop(f"report refused ({error.status_code}): {error.body[:200]}")
                raise TaskStopped(error.body) from error
            raise

    def _run(self) -> None:
        try:
            self._prepare_and_run()
        except TaskStopped:
            pass
        except Exception as error:  # anything unforeseen fails the task with the reason, never silently
            log("task failed in the agent", task_id=self.task_id, error=f"{type(error).__name__}: {error}")
            self._fail(f"agent error: {type(error).__name__}: {error}")
        finally:
            self.worker.finished(self)
            shutil.rmtree(self.directory, ignore_errors=True)

    def _fail(self, error: str, **fields: Any) -> None:
        try:
            self.report("failed", error=error[:4096], **fields)
        except (TaskStopped, ApiError, httpx.HTTPError):
            pass

    def _prepare_and_run(self) -> None:
        workdir = self.directory / "work"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        try:
            command = command_of(self.lease)
            self._fetch_datasets(workdir)
        except (ValueError, DatasetError) as error:
            self._fail(str(error))
            return
        spec = RunSpec(
            task_id=self.task_id,
            command=command,
            workdir=workdir,
            log_path=self.log_path,
            env={"AIPLANE_WORKER_ID": self.ctx.worker_id},
            cpu=int(self.lease.get("cpu") or 0),
            memory_gb=int(self.lease.get("memory_gb") or 0),
            gpu_indices=self.gpu_indices,
            image=(self.lease.get("metadata") or {}).get("image"),
        )
        start_error: str | None = None
        with self.lock:
            self._check()
            try:
                self.execution = execution = self.ctx.runner.start(spec)
            except OSError as error:
                self.execution = None
                start_error = f"the entrypoint could not start: {error}"
        if start_error:
            self._fail(start_error)
            return
        self.report("running")
        exit_code = None
        while exit_code is None:
            exit_code = execution.wait(POLL_PROCESS_S)
        self._check()  # stopped here: the process was killed, the API has moved on
        collecting = self.report("collecting", exit_code=exit_code)
        uploaded = self._upload_log(collecting.get("log_upload_url"))
        tail = output_tail(self.log_path, self.ctx.config.output_tail_bytes)
        fields = {"exit_code": exit_code, "output": tail, "log_uploaded": uploaded}
        if exit_code == 0:
            self.report("completed", **fields)
        else:
            self.report("failed", error=f"the entrypoint exited with code {exit_code}", **fields)

    def _upload_log(self, url: str | None) -> bool:
        if not url:
            return False
        try:
            self.ctx.api.put_presigned(url, self.log_path.read_bytes())
            return True
        except httpx.HTTPError as error:
            log("task log upload failed", task_id=self.task_id, error=str(error))
            return False

    def _fetch_datasets(self, workdir: Path) -> None:
        """Each spec's `download_url` (the API presigns s3:// sources) into its mount path under the
        working directory, checked against its sha256."""
        for position, spec in enumerate(self.lease.get("dataset_specs") or []):
            name = spec.get("name") or f"dataset-{position}"
            url = spec.get("download_url") or (
                spec.get("source") if str(spec.get("source", "")).startswith("https://") else None
            )
            if not url:
                raise DatasetError(f"dataset {name!r}: no readable source ({spec.get('source')!r})")
            relative = (spec.get("mount_path") or f"datasets/{name}").lstrip("/")
            target = (workdir / relative).resolve()
            if not target.is_relative_to(workdir.resolve()):
                raise DatasetError(
                    f"dataset {name!r}: mount_path {spec.get('mount_path')!r} leaves the working directory"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(target, "wb") as handle:
                    self.ctx.api.get_presigned(url, handle)
            except httpx.HTTPError as error:
                raise DatasetError(f"dataset {name!r}: download failed: {error}") from error
            expected = (spec.get("sha256") or "").lower()
            if expected:
                actual = sha256_of(target)
                if actual != expected:
                    raise DatasetError(f"dataset {name!r}: sha256 mismatch: expected {expected}, got {actual}")


class TaskWorker(BaseComponent):
    name = "mlworker"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.tasks_dir = ctx.component_dir(TASKS_DIR)
        self.runs: dict[str, TaskRun] = {}
        self.lock = threading.Lock()
        self.registered = False
        self.next_beat = 0.0
        self.next_lease = 0.0
        self.lease_ttl_s = DEFAULT_LEASE_TTL_S
        self.renewed_at = time.monotonic()

    # The loop.
    def tick(self, ctx: AgentContext) -> None:
        try:
            if not self.registered:
                self._register()
            now = time.monotonic()
            if now >= self.next_beat:
                self.next_beat = now + ctx.config.heartbeat_s
                self._heartbeat()
            if now >= self.next_lease:
                self.next_lease = now + ctx.config.poll_s
                self._lease_all()
        except ApiError as error:
            if error.status_code == 404:  # the scheduler forgot this worker: register again
                self.registered = False
            log("mlworker refused", status=error.status_code, error=error.body[:300])
        except httpx.HTTPError as error:
            log("mlworker unreachable", error=type(error).__name__)
        self._expire_unrenewed()

    def _register(self) -> None:
        self.ctx.api.register_worker(
            self.ctx.worker_id, self.ctx.inventory.capabilities(), self.ctx.config.service_slots
        )
        self.registered = True
        self.renewed_at = time.monotonic()
        log(
            "registered with the mlworker scheduler",
            worker_id=self.ctx.worker_id,
            capabilities=self.ctx.inventory.capabilities(),
            runner=self.ctx.runner.describe(),
        )
        self._recover_after_restart()

    def _recover_after_restart(self) -> None:
        """Leases left in the state dir by a previous run of the agent: their processes are gone."""
        for lease_file in sorted(self.tasks_dir.glob(f"*/{LEASE_FILE}")):
            task_id = lease_file.parent.name
            if task_id in self.runs:
                continue
            kept = json.loads(lease_file.read_text())
            try:
                self.ctx.api.report_task(
                    task_id,
                    {
                        "worker_id": self.ctx.worker_id,
                        "status": "failed",
                        "fencing_token": int(kept["fencing_token"]),
                        "error": "the agent restarted while the task ran",
                    },
                )
            except (ApiError, httpx.HTTPError):
                pass  # refused (the lease passed already) or unreachable: housekeeping requeues it
            shutil.rmtree(lease_file.parent, ignore_errors=True)

    def _leases(self) -> dict[str, int]:
        with self.lock:
            return {task_id: run.token for task_id, run in self.runs.items()}

    def _heartbeat(self) -> None:
        answer = self.ctx.api.worker_heartbeat(self.ctx.worker_id, self._leases(), self.ctx.plugin_health())
        self.renewed_at = time.monotonic()
        self.lease_ttl_s = float(answer.get("lease_ttl_s") or self.lease_ttl_s)
        for task_id in answer.get("stop_tasks") or []:
            run = self.runs.get(task_id)
            if run is not None:
                run.stop("the scheduler asked to stop it (cancelled or leased elsewhere)")

    def _lease_all(self) -> None:
        while True:
            lease = self.ctx.api.lease(self.ctx.worker_id)
            if lease is None:
                return
            self.renewed_at = time.monotonic()
            run = TaskRun(self, lease, self._grant_gpus(int(lease.get("gpu") or 0)))
            with self.lock:
                self.runs[run.task_id] = run
            log("task leased", task_id=run.task_id, fencing_token=run.token, gpus=list(run.gpu_indices))
            run.start()

    def _grant_gpus(self, count: int) -> tuple[int, ...]:
        """The lowest device indices no running task holds (slot numbers where there are no devices)."""
        with self.lock:
            held = {index for run in self.runs.values() for index in run.gpu_indices}
        indices = [gpu.index for gpu in self.ctx.inventory.gpus] or list(range(self.ctx.inventory.gpu_slots))
        return tuple([index for index in indices if index not in held][:count])

    def _expire_unrenewed(self) -> None:
        """Not renewed within the lease TTL: the API has given the tasks away; stop them here."""
        if time.monotonic() - self.renewed_at <= self.lease_ttl_s:
            return
        with self.lock:
            runs = list(self.runs.values())
        for run in runs:
            run.stop("its lease expired: the scheduler could not be reached to renew it")

    def finished(self, run: TaskRun) -> None:
        with self.lock:
            self.runs.pop(run.task_id, None)

    def running_work(self) -> int:
        with self.lock:
            return len(self.runs)

    def status(self) -> dict[str, Any]:
        return {"registered": self.registered, "tasks": sorted(self._leases())}

    def stop(self) -> None:
        with self.lock:
            runs = list(self.runs.values())
        for run in runs:
            run.abandon("the agent stopped while the task ran")
