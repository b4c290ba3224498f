"""Scheduled tick (via its SQS queue): mark workers silent past the heartbeat timeout as lost,
so placement sends them no new circuits, and move their circuits to live workers."""

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.appproxy.circuits import relocate_circuits_of_lost_workers
from aiplane.appproxy.workers import mark_lost_workers
from aiplane.observability import logger


def record_handler(record: SQSRecord) -> None:
    lost = mark_lost_workers()
    if lost:
        logger.info("app-proxy workers marked lost", extra={"authorities": lost})
    moved = relocate_circuits_of_lost_workers()
    if moved:
        logger.info("circuits of lost app-proxy workers moved", extra={"circuit_ids": moved})


handler = sqs_worker(record_handler)
