"""Sending to SQS queues and to event buses (`event_bus.py`), one way.

Both services answer 200 to a batch some of whose entries they refused (`Failed`,
`FailedEntryCount`), so every send checks its entries and raises `PublishRefused` naming the first
refusal. Batches respect the services' limit of 10 entries. The two live in two modules: a
function's role covers the services its imports call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from aiplane.data import aws
from aiplane.data.aws import BATCH_LIMIT, PublishRefused
from aiplane.settings import get_settings
from aiplane_shared import resources


@cache
def queue_url(queue: resources.Queue) -> str:
    return aws.client("sqs").get_queue_url(QueueName=get_settings().resource(queue.name))["QueueUrl"]


def send_messages(queue: resources.Queue, bodies: Sequence[Any]) -> None:
    """Each body as a JSON message on `queue`."""
    for start in range(0, len(bodies), BATCH_LIMIT):
        chunk = bodies[start : start + BATCH_LIMIT]
        answer = aws.client("sqs").send_message_batch(
            QueueUrl=queue_url(queue),
            Entries=[
                {"Id": str(index), "MessageBody": json.dumps(body, default=str)} for index, body in enumerate(chunk)
            ],
        )
        if answer.get("Failed"):
            raise PublishRefused(
                f"{queue.name} refused {len(answer['Failed'])} of {len(chunk)} messages: {answer['Failed'][0]}"
            )
