"""Scheduled tick (via its SQS queue): collect interactive circuits idle past the timeout and
free their slots."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.appproxy.circuits import collect_idle_circuits
from aiplane.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    collected = collect_idle_circuits()
    if collected:
        logger.info("idle app-proxy circuits collected", extra={"circuit_ids": collected})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
