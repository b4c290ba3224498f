"""Scheduled tick (via its SQS queue): remove presigned uploads never completed, runtime files'
and gpufarm models' alike (their records and any object uploaded)."""

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.commerce import serving
from aiplane.files import tree
from aiplane.observability import logger


def record_handler(record: SQSRecord) -> None:
    swept = {"files": tree.sweep_abandoned_uploads(), "models": serving.sweep_abandoned_uploads()}
    if any(swept.values()):
        logger.info("abandoned presigned uploads removed", extra=swept)


handler = sqs_worker(record_handler)
