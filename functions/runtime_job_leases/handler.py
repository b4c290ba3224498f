"""Scheduled tick (via its SQS queue): return jobs whose lease ran out to the pending queue."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.events.jobs import return_expired_leases
from aiplane.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    returned = return_expired_leases()
    if returned:
        logger.info("expired job leases returned to the queue", extra={"jobs": returned})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
