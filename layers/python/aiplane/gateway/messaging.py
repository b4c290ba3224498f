"""The gateway's SQS messages: sync requests and model-download jobs."""

from __future__ import annotations

from aiplane.data import aws
from aiplane.data.publish import send_messages
from aiplane_shared.resources import GATEWAY_SYNC_QUEUE, MODEL_DOWNLOAD_QUEUE


def request_sync(backend_ids: list[str]) -> None:
    """Ask the sync worker to reconcile these backends now rather than on the next tick."""
    if backend_ids:
        send_messages(GATEWAY_SYNC_QUEUE, [{"backendId": backend_id} for backend_id in backend_ids])


def send_download_jobs(job_ids: list[str]) -> None:
    if job_ids:
        send_messages(MODEL_DOWNLOAD_QUEUE, [{"jobId": job_id} for job_id in job_ids])


def extend_visibility(queue_arn: str, receipt_handle: str, seconds: int) -> None:
    """Keep a message being worked on hidden from other workers for `seconds` more."""
    url = aws.client("sqs").get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
    aws.client("sqs").change_message_visibility(QueueUrl=url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)
