"""Scheduled tick (via its SQS queue): return tasks whose lease expired to the queue (or fail
them once out of retries), mark GPU workers silent past the heartbeat timeout offline, and stop
tasks past their walltime."""

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.mlworker.cluster import enforce_walltime
from aiplane.mlworker.workers import expire_leases
from aiplane.observability import logger


def record_handler(record: SQSRecord) -> None:
    expired = expire_leases()
    if expired:
        logger.info("expired mlworker task leases", extra={"task_ids": expired})
    stopped = enforce_walltime()
    if stopped:
        logger.info("stopped mlworker tasks past their walltime", extra={"task_ids": stopped})


handler = sqs_worker(record_handler)
