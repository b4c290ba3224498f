"""The process runner: the entrypoint as a local process group, in its working directory, with a
clean environment (nothing of the agent's, its credential least of all)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from pathlib import Path
from typing import Any

from aiplane_agent.runners import RunSpec

CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000


def clean_environment(spec: RunSpec) -> dict[str, str]:
    tmp = spec.workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    environment = {
        "PATH": CLEAN_PATH,
        "HOME": str(spec.workdir),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "AIPLANE_TASK_ID": spec.task_id,
    }
    environment.update(spec.env)
    # Granted GPUs only; none granted: no device is visible (an empty list would show them all).
    environment["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, spec.gpu_indices)) if spec.gpu_indices else "-1"
    return environment


class CgroupTree:
    """The agent's delegated cgroup v2 subtree (systemd `Delegate=yes`): one leaf per task with
    memory.max and cpu.max. None of it when the agent may not write there."""

    def __init__(self, root: Path = CGROUP_ROOT) -> None:
        self.base: Path | None = None
        try:
            own = Path(Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1].lstrip("/"))
            base = root / own
            if not (root / "cgroup.controllers").exists() or not os.access(base, os.W_OK):
                return
            # cgroup v2 keeps processes out of inner nodes: the agent moves to a leaf of its own first.
            (base / "agent").mkdir(exist_ok=True)
            (base / "agent" / "cgroup.procs").write_text(str(os.getpid()))
            (base / "cgroup.subtree_control").write_text("+cpu +memory")
            self.base = base
        except (OSError, IndexError):
            self.base = None

    def leaf(self, spec: RunSpec) -> Path | None:
        if self.base is None:
            return None
        try:
            leaf = self.base / f"task-{spec.task_id}"
            leaf.mkdir(exist_ok=True)
            if spec.memory_gb:
                (leaf / "memory.max").write_text(str(spec.memory_gb * 1024**3))
            if spec.cpu:
                (leaf / "cpu.max").write_text(f"{spec.cpu * CPU_PERIOD_US} {CPU_PERIOD_US}")
            return leaf
        except OSError:
            return None


def _limit_in_child(spec: RunSpec, leaf: Path | None):
    """Runs in the child between fork and exec."""

    def limit() -> None:
        if leaf is not None:
            (leaf / "cgroup.procs").write_text("0")  # "0": the writing process itself
            return
        if spec.memory_gb:
            size = spec.memory_gb * 1024**3
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        if spec.cpu:
            cores = sorted(os.sched_getaffinity(0))[: spec.cpu]
            os.sched_setaffinity(0, cores)

    return limit


class ProcessExecution:
    def __init__(self, process: subprocess.Popen, limits: str, leaf: Path | None) -> None:
        self.process = process
        self._limits = limits
        self.leaf = leaf

    @property
    def limits(self) -> str:
        return self._limits

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None:
            self._cleanup()
        return code

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._cleanup()
        return code

    def stop(self, grace_s: float) -> None:
        """SIGTERM to the whole process group, SIGKILL after the grace period."""
        if self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait()
        self._cleanup()

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def _cleanup(self) -> None:
        if self.leaf is not None:
            try:
                self.leaf.rmdir()
            except OSError:
                pass
            self.leaf = None


class ProcessRunner:
    name = "process"

    def __init__(self, cgroups: CgroupTree | None = None) -> None:
        self.cgroups = cgroups or CgroupTree()

    def describe(self) -> dict[str, Any]:
        return {"runner": self.name, "limits": "cgroup" if self.cgroups.base is not None else "rlimit"}

    def start(self, spec: RunSpec) -> ProcessExecution:
        spec.workdir.mkdir(parents=True, exist_ok=True)
        leaf = self.cgroups.leaf(spec)
        limits = "cgroup" if leaf is not None else ("rlimit" if spec.memory_gb or spec.cpu else "none")
        with open(spec.log_path, "ab") as log:
            process = subprocess.Popen(
                spec.command,
                cwd=spec.workdir,
                env=clean_environment(spec),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop kills all of it
                preexec_fn=_limit_in_child(spec, leaf),
            )
        return ProcessExecution(process, limits, leaf)
