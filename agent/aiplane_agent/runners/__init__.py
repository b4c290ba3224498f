"""Runners: how the agent runs a task's entrypoint, behind one interface.

- `ProcessRunner`: a local process in a per-task working directory with a clean environment,
  limited by a cgroup (v2, where the agent may create one) or by rlimits and CPU affinity. Used
  where docker is absent (`make run`, CI).
- `ContainerRunner`: `docker run` with the NVIDIA runtime and the task's image, limited by
  docker's own --cpus/--memory/--gpus. Used on GPU hosts.

`choose_runner` picks one at start-up; the agent reports which (`Runner.describe`). Told that the
container runner is required (`require_container`, set by the cloud hosts' user data), it picks
nothing else: without docker the agent does not start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiplane_agent.config import AgentConfig


@dataclass(frozen=True)
class RunSpec:
    task_id: str
    command: list[str]  # argv
    workdir: Path  # the task's own directory (mounted at /workspace in a container)
    log_path: Path  # stdout and stderr, interleaved
    env: dict[str, str] = field(default_factory=dict)  # on top of the runner's clean environment
    cpu: int = 0  # cores; 0: no limit
    memory_gb: int = 0  # 0: no limit
    gpu_indices: tuple[int, ...] = ()  # the devices granted (CUDA_VISIBLE_DEVICES)
    image: str | None = None  # containers only
    published: tuple[str, ...] = ()  # containers only: `docker run -p` values (a Jupyter server's port)


class Execution(Protocol):
    """One started run."""

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int | None: ...

    def stop(self, grace_s: float) -> None: ...

    @property
    def limits(self) -> str: ...  # how the limits are enforced: "cgroup", "rlimit", "container", "none"


class Runner(Protocol):
    name: str

    def start(self, spec: RunSpec) -> Execution: ...

    def describe(self) -> dict[str, Any]: ...


class RunnerUnavailable(RuntimeError):
    """The configuration asks for a runner this host cannot offer: the agent does not start."""


def choose_runner(config: AgentConfig) -> Runner:
    from aiplane_agent.runners.container import ContainerRunner, docker_with_nvidia
    from aiplane_agent.runners.process import ProcessRunner

    if config.require_container:
        if config.runner == "process" or not docker_with_nvidia():
            raise RunnerUnavailable(
                "the container runner is required (AIPLANE_AGENT_REQUIRE_CONTAINER) and docker "
                "with the NVIDIA runtime does not answer here; tasks never run as the agent's processes"
            )
        return ContainerRunner(default_image=config.task_image)
    if config.runner == "container" or (config.runner == "auto" and docker_with_nvidia()):
        return ContainerRunner(default_image=config.task_image)
    return ProcessRunner()
