"""Appended events, delivered by the domain bus rule through the event-triggers queue: run the
functions of the triggers listening for each event's type."""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.events.triggers import handle_event

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    detail = json.loads(record.body)["detail"]  # the EventBridge event the rule delivered
    handle_event(detail["event"], int(detail.get("depth", 0)))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
