"""Leases held by workers: fencing tokens, refused late reports, renewals, task logs and datasets."""

from __future__ import annotations

import hashlib
import time

import httpx

from aiplane.data.aws import client as aws_client
from aiplane.mlworker import workers
from aiplane.mlworker.models import TaskRecord
from aiplane.mlworker.tasks import get_task
from aiplane.settings import get_settings
from aiplane_shared.resources import ARTIFACT_BUCKET


def report(client, admin, task_id: str, worker_id: str, status: str, token: int, **fields) -> httpx.Response:
    return client.post(
        f"/v1/scheduler/jobs/{task_id}/state",
        headers=admin,
        json={"worker_id": worker_id, "status": status, "fencing_token": token, **fields},
    )


def expire(task_id: str) -> None:
    get_task(task_id).update(actions=[TaskRecord.lease_expires_epoch.set(int(time.time()) - 1)])


def test_partitioned_worker_cannot_finish_a_task_leased_again(client, admin, submit, register, lease):
    task = submit("fenced")
    register("gpu-a")
    register("gpu-b")
    first = lease("gpu-a")
    assert first["fencing_token"] == 1
    assert report(client, admin, task["id"], "gpu-a", "running", 1).status_code == 200
    # gpu-a is cut off: its lease runs out, housekeeping requeues the task, gpu-b leases it.
    expire(task["id"])
    workers.expire_leases()
    second = lease("gpu-b")
    assert second["id"] == task["id"] and second["fencing_token"] == 2
    # gpu-a comes back and replays its reports, under its own id and with its old token: refused.
    for worker_id in ("gpu-a", "gpu-b"):
        replay = report(client, admin, task["id"], worker_id, "completed", 1, output="stale result")
        assert replay.status_code == 409 and replay.json()["code"] == "CONFLICT", replay.text
    beat = client.post(
        "/v1/scheduler/workers/gpu-a/heartbeat",
        headers=admin,
        json={"leases": [{"task_id": task["id"], "fencing_token": 1}]},
    ).json()
    assert beat["stop_tasks"] == [task["id"]]  # the old holder is told to kill its process
    # The current holder finishes it.
    assert report(client, admin, task["id"], "gpu-b", "running", 2).status_code == 200
    done = report(client, admin, task["id"], "gpu-b", "completed", 2, output="fresh result", exit_code=0).json()
    assert done["status"] == "completed" and done["output"] == "fresh result" and done["worker_id"] == "gpu-b"
    assert done["exit_code"] == 0


def test_a_report_after_the_lease_passed_is_refused_even_before_housekeeping(client, admin, submit, register, lease):
    task = submit("late")
    register("gpu-a")
    lease("gpu-a")
    expire(task["id"])
    late = report(client, admin, task["id"], "gpu-a", "completed", 1)
    assert late.status_code == 409 and "expired" in late.json()["error"]
    beat = client.post(
        "/v1/scheduler/workers/gpu-a/heartbeat",
        headers=admin,
        json={"leases": [{"task_id": task["id"], "fencing_token": 1}]},
    ).json()
    assert beat["stop_tasks"] == [task["id"]]  # not renewed: the lease had passed
    assert get_task(task["id"]).status == "preparing"  # housekeeping requeues it


def test_reports_need_the_token_and_move_forward_only(client, admin, submit, register, lease):
    task = submit("ordered")
    register("gpu-a")
    lease("gpu-a")
    missing = client.post(
        f"/v1/scheduler/jobs/{task['id']}/state", headers=admin, json={"worker_id": "gpu-a", "status": "running"}
    )
    assert missing.status_code == 400 and missing.json()["code"] == "VALIDATION_ERROR"
    assert report(client, admin, task["id"], "gpu-a", "collecting", 1).status_code == 200
    backwards = report(client, admin, task["id"], "gpu-a", "running", 1)
    assert backwards.status_code == 409 and "cannot go back" in backwards.json()["error"]
    failed = report(
        client, admin, task["id"], "gpu-a", "failed", 1, error="the entrypoint exited with code 3", exit_code=3
    )
    assert failed.json()["status"] == "failed" and failed.json()["exit_code"] == 3


def test_heartbeat_with_held_leases_renews_current_ones_and_stops_unknown_ones(client, admin, submit, register, lease):
    task = submit("renewed")
    register("gpu-a")
    lease("gpu-a")
    get_task(task["id"]).update(actions=[TaskRecord.lease_expires_epoch.set(int(time.time()) + 5)])
    beat = client.post(
        "/v1/scheduler/workers/gpu-a/heartbeat",
        headers=admin,
        json={"leases": [{"task_id": task["id"], "fencing_token": 1}, {"task_id": "not-ours", "fencing_token": 4}]},
    ).json()
    assert beat["stop_tasks"] == ["not-ours"]
    assert get_task(task["id"]).lease_expires_epoch > time.time() + 60


def test_full_log_uploads_to_the_presigned_url_and_reads_back_through_the_task(client, admin, submit, register, lease):
    task = submit("logged")
    register("gpu-a")
    lease("gpu-a")
    report(client, admin, task["id"], "gpu-a", "running", 1)
    collecting = report(client, admin, task["id"], "gpu-a", "collecting", 1, exit_code=0).json()
    full_log = b"".join(b"line %d\n" % number for number in range(20000))
    assert httpx.put(collecting["log_upload_url"], content=full_log).status_code == 200
    report(client, admin, task["id"], "gpu-a", "completed", 1, exit_code=0, output="line 19999\n", log_uploaded=True)
    detail = client.get(f"/v1/tasks/{task['id']}", headers=admin).json()
    assert httpx.get(detail["log_url"]).content == full_log
    assert "log_url" not in client.get("/v1/tasks", headers=admin).json()["tasks"][0]


def test_lease_presigns_s3_dataset_sources(client, admin, submit, register, lease):
    bucket = get_settings().bucket(ARTIFACT_BUCKET.name)
    aws_client("s3").put_object(Bucket=bucket, Key="datasets/train.csv", Body=b"a,b\n1,2\n")
    digest = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    submit(
        "with-data",
        dataset_specs=[
            {"name": "train", "source": f"s3://{bucket}/datasets/train.csv", "sha256": digest},
            {"name": "public", "source": "https://example.com/x.csv"},
        ],
    )
    register("gpu-a")
    specs = lease("gpu-a")["dataset_specs"]
    assert httpx.get(specs[0]["download_url"]).content == b"a,b\n1,2\n" and specs[0]["sha256"] == digest
    assert "download_url" not in specs[1]


def test_a_contracts_agent_credential_works_for_its_own_worker_only(client, admin, submit):
    from aiplane.gpufarm import agent_credentials
    from aiplane.identity.principal import BOOTSTRAP_ADMIN_ID, agent_worker_id

    agent = {"X-API-Key": agent_credentials.issue(BOOTSTRAP_ADMIN_ID, "ct-agent-1").api_key}
    own = agent_worker_id("ct-agent-1")
    assert client.post("/v1/scheduler/workers", headers=agent, json={"id": own}).status_code == 201
    task = submit("by-agent")
    work = client.post(f"/v1/scheduler/workers/{own}/lease", headers=agent).json()
    assert work["id"] == task["id"]
    done = client.post(
        f"/v1/scheduler/jobs/{task['id']}/state",
        headers=agent,
        json={"worker_id": own, "status": "completed", "fencing_token": work["fencing_token"]},
    )
    assert done.status_code == 200 and done.json()["status"] == "completed"
    # Another contract's worker, a worker of its choosing, and every other route: refused.
    for path, body in (
        (f"/v1/scheduler/workers/{agent_worker_id('ct-other')}/heartbeat", None),
        ("/v1/scheduler/workers", {"id": "gpu-1"}),
        ("/v1/scheduler/workers", {}),
    ):
        refused = client.post(path, headers=agent, json=body)
        assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN", path
    assert client.get("/v1/tasks", headers=agent).status_code == 403
    assert client.post("/v1/tasks", headers=agent, json={"job_name": "x"}).status_code == 403
