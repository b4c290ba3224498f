"""Scheduled tick (via its SQS queue): anchor every audit chain (mlworker events, authentication
events) in a new signed digest in the Object Lock bucket."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane import audit_chain
from aiplane.identity.audit import CHAIN as AUTH_CHAIN
from aiplane.mlworker.audit import CHAIN as MLWORKER_CHAIN
from aiplane.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)
CHAINS = (MLWORKER_CHAIN, AUTH_CHAIN)


def record_handler(record: SQSRecord) -> None:
    for chain in CHAINS:
        stored = audit_chain.anchor(chain)
        logger.info("audit chain anchored", extra={"chain": chain.name, "digest": stored.key,
                                                    "sequence_num": stored.digest["sequence_num"]})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
