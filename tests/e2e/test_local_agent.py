"""The local agent end to end: what `make run` starts (`LocalAgent`) runs mlworker tasks
submitted through the API, and stops the process of a cancelled one."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from aiplane.data.aws import client as aws_client
from aiplane.mlworker.tasks import get_task
from aiplane.settings import get_settings
from aiplane_local.gpu_agents import LocalAgent
from aiplane_shared.resources import ARTIFACT_BUCKET
from tests.e2e.conftest import wait_for
from tests.integration.mlworker.conftest import new_user_headers


@pytest.fixture(scope="module")
def agent(api_base, admin_api_key):
    local = LocalAgent(f"{api_base}/mlworker", admin_api_key, gpus=2, worker_id="e2e-local-agent")
    yield local
    local.stop()


@pytest.fixture
def mlworker(api_base, admin_api_key, agent):
    with httpx.Client(base_url=f"{api_base}/mlworker", headers={"X-API-Key": admin_api_key}, timeout=30) as client:
        yield client


def submit(mlworker, **fields) -> str:
    response = mlworker.post("/v1/tasks", json={"job_name": "e2e", **fields})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def finished(mlworker, task_id: str) -> dict:
    return wait_for(
        lambda: (task := mlworker.get(f"/v1/tasks/{task_id}").json())["status"] in ("completed", "failed") and task,
        timeout_s=60,
    )


def test_the_local_agent_registers_with_this_machines_capacity(mlworker):
    worker = wait_for(
        lambda: (
            mlworker.get("/v1/scheduler/workers/e2e-local-agent").status_code == 200
            and mlworker.get("/v1/scheduler/workers/e2e-local-agent").json()
        )
    )
    assert worker["capabilities"]["gpu_count"] == 2  # scheduling slots locally
    assert worker["capabilities"]["cpu_cores"] == len(os.sched_getaffinity(0))
    assert worker["capabilities"]["memory_gb"] >= 1 and worker["status"] == "active"


def test_echo_hello_completes_with_its_output_and_full_log(mlworker):
    task_id = submit(mlworker, entrypoint='/bin/bash -c "echo hello"', gpu=1)
    task = finished(mlworker, task_id)
    assert task["status"] == "completed", task
    assert "hello" in task["output"] and task["exit_code"] == 0
    assert task["worker_id"] == "e2e-local-agent" and task["started_at"] and task["ended_at"]
    assert httpx.get(task["log_url"]).text == "hello\n"
    order = [entry["status"] for entry in get_task(task_id).history]
    assert order == ["queued", "preparing", "running", "collecting", "completed"]


def test_a_local_users_task_runs_on_the_shared_local_agent(api_base, agent):
    with httpx.Client(base_url=f"{api_base}/mlworker", headers=new_user_headers(), timeout=30) as user:
        task = finished(user, submit(user, entrypoint='/bin/bash -c "echo hi"'))
    assert task["status"] == "completed" and task["worker_id"] == "e2e-local-agent", task


def test_a_failing_entrypoint_fails_with_its_exit_code_and_sees_only_its_gpus(mlworker):
    task_id = submit(mlworker, entrypoint="/bin/bash -c 'echo gpus=$CUDA_VISIBLE_DEVICES home=$HOME; exit 3'", gpu=1)
    task = finished(mlworker, task_id)
    assert task["status"] == "failed" and task["exit_code"] == 3 and "code 3" in task["error"]
    assert "gpus=0" in task["output"] or "gpus=1" in task["output"]
    assert "AIPLANE_AGENT_CREDENTIAL" not in task["output"]


def test_a_dataset_with_the_wrong_sha256_fails_the_task_before_it_runs(mlworker, tmp_path):
    bucket = get_settings().bucket(ARTIFACT_BUCKET.name)
    aws_client("s3").put_object(Bucket=bucket, Key="datasets/e2e.txt", Body=b"real bytes")
    marker = tmp_path / "ran"
    good = submit(
        mlworker,
        entrypoint="/bin/cat data/e2e.txt",
        dataset_specs=[
            {
                "name": "e2e",
                "source": f"s3://{bucket}/datasets/e2e.txt",
                "mount_path": "data/e2e.txt",
                "sha256": hashlib.sha256(b"real bytes").hexdigest(),
            }
        ],
    )
    bad = submit(
        mlworker,
        entrypoint=f"/usr/bin/touch {marker}",
        dataset_specs=[{"name": "e2e", "source": f"s3://{bucket}/datasets/e2e.txt", "sha256": "0" * 64}],
    )
    assert finished(mlworker, good)["output"] == "real bytes"
    failed = finished(mlworker, bad)
    assert failed["status"] == "failed" and "sha256 mismatch" in failed["error"] and "'e2e'" in failed["error"]
    assert not marker.exists()


def test_a_cancelled_tasks_process_is_stopped(mlworker, tmp_path):
    pid_file = tmp_path / "pid"
    task_id = submit(mlworker, entrypoint=f'/bin/bash -c "echo $$ > {pid_file}; exec sleep 300"')
    wait_for(
        lambda: (
            mlworker.get(f"/v1/tasks/{task_id}").json()["status"] == "running"
            and pid_file.exists()
            and pid_file.read_text().strip()
        ),
        timeout_s=60,
    )
    pid = int(pid_file.read_text())
    assert process_alive(pid)
    assert mlworker.delete(f"/v1/tasks/{task_id}").status_code == 204
    wait_for(lambda: not process_alive(pid), timeout_s=30)
    task = mlworker.get(f"/v1/tasks/{task_id}").json()
    assert task["status"] == "failed" and task["error"] == "cancelled"  # its late reports were refused


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited
        return stat.read().split(")")[-1].split()[0] != "Z"
