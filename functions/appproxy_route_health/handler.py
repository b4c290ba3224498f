"""Scheduled tick (via its SQS queue): probe the inference routes of endpoints with a health
check, mark unhealthy ones and evict those unhealthy for too long."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.appproxy.route_health import check_routes
from aiplane.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    changed = check_routes()
    if changed:
        logger.info("app-proxy route health changed", extra={"circuit_ids": changed})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
