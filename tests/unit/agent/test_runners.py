"""The runners: a clean per-task environment and limits (process), docker's command (container)."""

from __future__ import annotations

import os
import sys
import time

import pytest
from aiplane_agent import agent
from aiplane_agent.config import AgentConfig
from aiplane_agent.runners import RunnerUnavailable, RunSpec, choose_runner
from aiplane_agent.runners import container as container_module
from aiplane_agent.runners.container import ContainerRunner, run_command
from aiplane_agent.runners.process import CgroupTree, ProcessRunner


def spec(tmp_path, command, **fields) -> RunSpec:
    return RunSpec(task_id="t-1", command=command, workdir=tmp_path / "work", log_path=tmp_path / "log", **fields)


def test_process_runs_in_its_working_dir_with_a_clean_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AIPLANE_AGENT_CREDENTIAL", "secret-credential")
    run = ProcessRunner().start(spec(tmp_path, ["/bin/sh", "-c", "pwd; env"], gpu_indices=(1, 3)))
    assert run.wait(10) == 0
    output = (tmp_path / "log").read_text()
    assert output.splitlines()[0] == str(tmp_path / "work")
    assert "secret-credential" not in output and "CUDA_VISIBLE_DEVICES=1,3" in output
    assert f"HOME={tmp_path / 'work'}" in output and "AIPLANE_TASK_ID=t-1" in output


def test_no_granted_gpu_hides_every_device(tmp_path):
    run = ProcessRunner().start(spec(tmp_path, ["/bin/sh", "-c", "echo $CUDA_VISIBLE_DEVICES"]))
    assert run.wait(10) == 0 and (tmp_path / "log").read_text() == "-1\n"


def test_memory_limit_without_a_cgroup_is_an_rlimit(tmp_path):
    runner = ProcessRunner(CgroupTree(root=tmp_path / "no-cgroups"))
    assert runner.describe() == {"runner": "process", "limits": "rlimit"}
    hog = [sys.executable, "-c", "bytearray(3 * 1024 ** 3); print('allocated')"]
    run = runner.start(spec(tmp_path, hog, memory_gb=1, cpu=1))
    assert run.limits == "rlimit"
    assert run.wait(30) != 0 and "MemoryError" in (tmp_path / "log").read_text()
    affinity = runner.start(
        spec(tmp_path, [sys.executable, "-c", "import os; print(len(os.sched_getaffinity(0)))"], cpu=1)
    )
    assert affinity.wait(10) == 0 and (tmp_path / "log").read_text().splitlines()[-1] == "1"


def test_cgroup_leaf_gets_the_task_limits(tmp_path, monkeypatch):
    root = tmp_path / "cgroup"
    own = "system.slice/aiplane-gpu-agent.service"
    (root / own).mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory")
    monkeypatch.setattr(
        "aiplane_agent.runners.process.Path.read_text",
        lambda self, *a, **k: f"0::/{own}\n" if str(self) == "/proc/self/cgroup" else open(self).read(),
    )
    tree = CgroupTree(root=root)
    assert tree.base == root / own
    assert (root / own / "agent" / "cgroup.procs").read_text() == str(os.getpid())
    assert (root / own / "cgroup.subtree_control").read_text() == "+cpu +memory"
    leaf = tree.leaf(spec(tmp_path, ["true"], cpu=2, memory_gb=4))
    assert (leaf / "memory.max").read_text() == str(4 * 1024**3) and (leaf / "cpu.max").read_text() == "200000 100000"


def test_stop_kills_the_whole_process_group(tmp_path):
    run = ProcessRunner().start(spec(tmp_path, ["/bin/sh", "-c", "sleep 300 & echo $!; wait"]))
    deadline = time.monotonic() + 10
    while not (tmp_path / "log").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int((tmp_path / "log").read_text())
    run.stop(grace_s=2)
    assert run.poll() is not None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the task's child survived")


def test_container_command_uses_the_nvidia_runtime_granted_devices_and_limits(tmp_path):
    command = run_command(
        spec(
            tmp_path,
            ["python", "train.py"],
            cpu=8,
            memory_gb=64,
            gpu_indices=(2, 5),
            env={"AIPLANE_WORKER_ID": "w-1"},
            image="pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
        ),
        default_image="nvidia/cuda:12.4.1-runtime-ubuntu22.04",
    )
    assert command[:2] == ["docker", "run"] and "--rm" in command
    assert (
        command[command.index("--runtime") + 1] == "nvidia" and command[command.index("--gpus") + 1] == '"device=2,5"'
    )
    assert "CUDA_VISIBLE_DEVICES=2,5" in command
    assert command[command.index("--cpus") + 1] == "8" and command[command.index("--memory") + 1] == "64g"
    assert f"{tmp_path / 'work'}:/workspace" in command and command[command.index("-w") + 1] == "/workspace"
    assert command[-3:] == ["pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime", "python", "train.py"]
    cpu_only = run_command(spec(tmp_path, ["true"]), default_image="python:3.12-slim")
    assert "--gpus" not in cpu_only and "--runtime" not in cpu_only and cpu_only[-2:] == ["python:3.12-slim", "true"]


def test_runner_choice_at_start_up(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker here
    config = AgentConfig(credential="c", mlworker_url="http://127.0.0.1:1")
    assert isinstance(choose_runner(config), ProcessRunner)
    forced = choose_runner(AgentConfig(credential="c", mlworker_url="http://127.0.0.1:1", runner="container"))
    assert isinstance(forced, ContainerRunner) and forced.describe()["runner"] == "container"


def test_a_host_that_requires_containers_never_falls_back_to_processes(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker here
    required = AgentConfig(credential="c", mlworker_url="http://127.0.0.1:1", require_container=True)
    with pytest.raises(RunnerUnavailable, match="container runner is required"):
        choose_runner(required)
    with pytest.raises(RunnerUnavailable):  # not even when told to use it: docker must answer
        choose_runner(
            AgentConfig(credential="c", mlworker_url="http://127.0.0.1:1", require_container=True, runner="container")
        )
    # The agent itself refuses to start (systemd retries), before it opens its listener.
    with pytest.raises(SystemExit) as refused:
        agent.main(
            [
                "--credential",
                "c",
                "--mlworker-url",
                "http://127.0.0.1:1",
                "--require-container",
                "--state-dir",
                str(tmp_path / "state"),
                "--port",
                "0",
            ]
        )
    assert refused.value.code == 2 and not (tmp_path / "state").exists()
    monkeypatch.setattr(container_module, "docker_with_nvidia", lambda: True)
    assert isinstance(choose_runner(required), ContainerRunner)
