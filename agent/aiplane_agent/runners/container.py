"""The container runner: `docker run` with the NVIDIA runtime, the task's image, and docker's own
limits (--cpus, --memory, --gpus for the granted devices)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from aiplane_agent.runners import RunSpec

WORKSPACE = "/workspace"
DOCKER_TIMEOUT_S = 10


def docker_with_nvidia() -> bool:
    """docker answers and offers the nvidia runtime (nvidia-container-toolkit)."""
    if not shutil.which("docker"):
        return False
    try:
        runtimes = subprocess.run(
            ["docker", "info", "--format", "{{json .Runtimes}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_S,
            check=True,
        ).stdout
        return "nvidia" in json.loads(runtimes or "{}")
    except (subprocess.SubprocessError, OSError, ValueError):
        return False


def container_name(task_id: str) -> str:
    return f"aiplane-task-{task_id}"


def run_command(spec: RunSpec, default_image: str) -> list[str]:
    command = [
        "docker",
        "run",
        "--rm",
        "--name",
        container_name(spec.task_id),
        "--init",
        "--label",
        f"aiplane.task={spec.task_id}",
        "-v",
        f"{spec.workdir}:{WORKSPACE}",
        "-w",
        WORKSPACE,
        "-e",
        f"AIPLANE_TASK_ID={spec.task_id}",
        "-e",
        f"HOME={WORKSPACE}",
    ]
    if spec.gpu_indices:
        devices = ",".join(map(str, spec.gpu_indices))
        command += ["--runtime", "nvidia", "--gpus", f'"device={devices}"', "-e", f"CUDA_VISIBLE_DEVICES={devices}"]
    if spec.cpu:
        command += ["--cpus", str(spec.cpu)]
    if spec.memory_gb:
        command += ["--memory", f"{spec.memory_gb}g", "--memory-swap", f"{spec.memory_gb}g"]
    command += [option for published in spec.published for option in ("-p", published)]
    for name, value in sorted(spec.env.items()):
        command += ["-e", f"{name}={value}"]
    return [*command, spec.image or default_image, *spec.command]


class ContainerExecution:
    limits = "container"

    def __init__(self, task_id: str, process: subprocess.Popen) -> None:
        self.task_id = task_id
        self.process = process

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float) -> None:
        if self.process.poll() is not None:
            return
        subprocess.run(
            ["docker", "stop", "--time", str(max(1, int(grace_s))), container_name(self.task_id)],
            capture_output=True,
            timeout=grace_s + DOCKER_TIMEOUT_S,
            check=False,
        )
        self.process.wait(timeout=DOCKER_TIMEOUT_S)


class ContainerRunner:
    name = "container"

    def __init__(self, default_image: str) -> None:
        self.default_image = default_image

    def describe(self) -> dict[str, Any]:
        return {"runner": self.name, "limits": "container", "default_image": self.default_image}

    def start(self, spec: RunSpec) -> ContainerExecution:
        spec.workdir.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as log:
            process = subprocess.Popen(
                run_command(spec, self.default_image),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return ContainerExecution(spec.task_id, process)
