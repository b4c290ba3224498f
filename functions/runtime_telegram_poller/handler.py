"""Scheduled tick (via its SQS queue): poll the Telegram frontends' bots that are due and answer
their messages with the frontends' chat chains (aiplane.telegram.poller)."""

import time

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.observability import logger
from aiplane.telegram import poller

# Start no frontend in the last quarter of the function's time: the poll in progress still has to end.
TIME_FOR_STARTING = 0.75


def record_handler(record: SQSRecord, lambda_context) -> None:
    deadline = time.monotonic() + TIME_FOR_STARTING * lambda_context.get_remaining_time_in_millis() / 1000
    polled = poller.poll_due(deadline)
    if polled:
        logger.info("telegram frontends polled", extra={"polled": polled})


handler = sqs_worker(record_handler)
