"""Scheduled tick (via its SQS queue): collect interactive circuits idle past the timeout and
free their slots."""

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.appproxy.circuits import collect_idle_circuits
from aiplane.observability import logger


def record_handler(record: SQSRecord) -> None:
    collected = collect_idle_circuits()
    if collected:
        logger.info("idle app-proxy circuits collected", extra={"circuit_ids": collected})


handler = sqs_worker(record_handler)
