"""What a worker reads and writes in S3 for a task, without AWS credentials of its own: the API
presigns each object for it.

- Datasets: each `dataset_specs` entry with an `s3://bucket/key` source gets a `download_url` in
  the lease answer (the agent checks the bytes against the spec's `sha256`).
- Logs: the answer to a `collecting` report carries `log_upload_url`, a presigned PUT of the
  task's full log to `workers.log_key` (per task and lease) in the artifacts bucket; once the
  worker says it uploaded it, `GET /v1/tasks/{taskId}` answers a `log_url` to read it.
"""

from __future__ import annotations

from typing import Any

from aiplane.data.aws import client
from aiplane.data.presigned import DOWNLOAD_EXPIRY_S, download_url
from aiplane.mlworker import tasks, workers
from aiplane.mlworker.models import TaskRecord
from aiplane.mlworker.tasks import COLLECTING
from aiplane.settings import get_settings
from aiplane_shared import resources

LOG_CONTENT_TYPE = "text/plain; charset=utf-8"
LOG_UPLOAD_EXPIRY_S = 3600
S3_SCHEME = "s3://"


def _bucket() -> str:
    return get_settings().bucket(resources.ARTIFACT_BUCKET.name)


def lease_answer(task: TaskRecord, worker_id: str | None = None) -> dict[str, Any]:
    """What the leasing worker gets: the task (with its rank), its fencing token and presigned dataset downloads."""
    return {
        **tasks.work_body(task, worker_id),
        "fencing_token": int(task.fencing_token or 0),
        "dataset_specs": dataset_specs_for_worker(task),
    }


def report_answer(task: TaskRecord) -> dict[str, Any]:
    """The task; while collecting, also where to upload its full log."""
    answer = tasks.task_body(task)
    if task.status == COLLECTING:
        answer["log_upload_url"] = client("s3").generate_presigned_url(
            "put_object", Params={"Bucket": _bucket(), "Key": workers.log_key(task)}, ExpiresIn=LOG_UPLOAD_EXPIRY_S
        )
    return answer


def task_detail(task: TaskRecord) -> dict[str, Any]:
    """GET /v1/tasks/{taskId}: the task and, once uploaded, a `log_url` to its full log."""
    detail = tasks.task_body(task)
    if task.log_key:
        detail["log_url"] = download_url(_bucket(), task.log_key, content_type=LOG_CONTENT_TYPE)
    return detail


def dataset_specs_for_worker(task: TaskRecord) -> list[dict[str, Any]]:
    specs = []
    for spec in task.dataset_specs or []:
        source = str(spec.get("source") or "")
        if source.startswith(S3_SCHEME) and "/" in source[len(S3_SCHEME) :]:
            bucket, key = source[len(S3_SCHEME) :].split("/", 1)
            spec = {
                **spec,
                "download_url": client("s3").generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=DOWNLOAD_EXPIRY_S
                ),
            }
        specs.append(spec)
    return specs
