"""Scheduled tick (via its SQS queue): anchor every audit chain (mlworker events, authentication
events) in a new signed digest in the Object Lock bucket."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane import audit_anchor
from aiplane.identity import audit as auth_log
from aiplane.mlworker import audit as mlworker_audit
from aiplane.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    for chain in (mlworker_audit.CHAIN, auth_log.CHAIN):
        stored = audit_anchor.anchor(chain)
        logger.info("audit chain anchored", extra={"chain": chain.name, "digest": stored.key,
                                                    "sequence_num": stored.digest["sequence_num"]})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
