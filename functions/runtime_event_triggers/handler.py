"""Appended events, delivered by the domain bus rule through the event-triggers queue: run the
functions of the triggers listening for each event's type, one function per message (an event
with several triggers is fanned out to one message per trigger; aiplane.events.triggers.deliver)."""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.events.triggers import deliver


def record_handler(record: SQSRecord) -> None:
    deliver(json.loads(record.body)["detail"])  # the EventBridge event the rule delivered, or one fanned-out trigger


handler = sqs_worker(record_handler)
