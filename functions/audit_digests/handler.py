"""Scheduled tick (via its SQS queue): anchor every audit chain (mlworker events, authentication
events) in a new signed digest in the Object Lock bucket."""

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane import audit_anchor
from aiplane.api.lambda_entry import sqs_worker
from aiplane.identity import audit as auth_log
from aiplane.mlworker import audit as mlworker_audit
from aiplane.observability import logger


def record_handler(record: SQSRecord) -> None:
    for chain in (mlworker_audit.CHAIN, auth_log.CHAIN):
        stored = audit_anchor.anchor(chain)
        logger.info(
            "audit chain anchored",
            extra={"chain": chain.name, "digest": stored.key, "sequence_num": stored.digest["sequence_num"]},
        )


handler = sqs_worker(record_handler)
