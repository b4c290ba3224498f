"""Scheduled tick (via its SQS queue): probe the inference routes of endpoints with a health
check, mark unhealthy ones and evict those unhealthy for too long."""

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.appproxy.route_health import check_routes
from aiplane.observability import logger


def record_handler(record: SQSRecord) -> None:
    changed = check_routes()
    if changed:
        logger.info("app-proxy route health changed", extra={"circuit_ids": changed})


handler = sqs_worker(record_handler)
