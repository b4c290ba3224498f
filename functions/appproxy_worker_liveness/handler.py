"""Scheduled tick (via its SQS queue): mark workers silent past the heartbeat timeout as lost,
so placement sends them no new circuits."""


from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.appproxy.workers import mark_lost_workers
from aiplane.observability import logger


def record_handler(record: SQSRecord) -> None:
    lost = mark_lost_workers()
    if lost:
        logger.info("app-proxy workers marked lost", extra={"authorities": lost})


handler = sqs_worker(record_handler)
