"""Sending to SQS queues and to the domain event bus, one way.

Both services answer 200 to a batch some of whose entries they refused (`Failed`,
`FailedEntryCount`), so every send checks its entries and raises `PublishRefused` naming the first
refusal. Batches respect the services' limit of 10 entries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from aiplane.data import aws
from aiplane.settings import get_settings
from aiplane_shared import resources

BATCH_LIMIT = 10  # SendMessageBatch and PutEvents both take at most 10 entries


class PublishRefused(RuntimeError):
    """SQS or EventBridge refused an entry of a send."""


@cache
def queue_url(queue: resources.Queue) -> str:
    return aws.client("sqs").get_queue_url(QueueName=get_settings().resource(queue.name))["QueueUrl"]


def send_messages(queue: resources.Queue, bodies: Sequence[Any]) -> None:
    """Each body as a JSON message on `queue`."""
    for start in range(0, len(bodies), BATCH_LIMIT):
        chunk = bodies[start:start + BATCH_LIMIT]
        answer = aws.client("sqs").send_message_batch(
            QueueUrl=queue_url(queue),
            Entries=[{"Id": str(index), "MessageBody": json.dumps(body, default=str)} for index, body in enumerate(chunk)])
        if answer.get("Failed"):
            raise PublishRefused(f"{queue.name} refused {len(answer['Failed'])} of {len(chunk)} messages: {answer['Failed'][0]}")


def put_domain_events(source: str, detail_type: str, details: Sequence[dict[str, Any]]) -> None:
    """Each detail as an event on the domain event bus."""
    bus = get_settings().resource(resources.DOMAIN_EVENT_BUS.name)
    for start in range(0, len(details), BATCH_LIMIT):
        chunk = details[start:start + BATCH_LIMIT]
        answer = aws.client("events").put_events(Entries=[
            {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail, default=str), "EventBusName": bus}
            for detail in chunk])
        if answer.get("FailedEntryCount"):
            refused = next(entry for entry in answer["Entries"] if entry.get("ErrorCode"))
            raise PublishRefused(f"the event bus refused {answer['FailedEntryCount']} of {len(chunk)} events: "
                                 f"{refused.get('ErrorCode')} {refused.get('ErrorMessage')}")
