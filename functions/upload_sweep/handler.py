"""Scheduled tick (via its SQS queue): remove presigned uploads never completed, runtime files'
and gpufarm models' alike (their records and any object uploaded)."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.commerce import serving
from aiplane.files import tree
from aiplane.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    swept = {"files": tree.sweep_abandoned_uploads(), "models": serving.sweep_abandoned_uploads()}
    if any(swept.values()):
        logger.info("abandoned presigned uploads removed", extra=swept)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
