"""Appended events, delivered by the domain bus rule through the event-triggers queue: run the
functions of the triggers listening for each event's type."""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.events.triggers import handle_event


def record_handler(record: SQSRecord) -> None:
    detail = json.loads(record.body)["detail"]  # the EventBridge event the rule delivered
    handle_event(detail["event"], int(detail.get("depth", 0)))


handler = sqs_worker(record_handler)
