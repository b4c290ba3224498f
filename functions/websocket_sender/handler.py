"""Live-updates queue (fed by the domain bus rule): push each status change to its owner's
WebSocket connections (PostToConnection), forgetting the stale ones."""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.live.sender import deliver


def record_handler(record: SQSRecord) -> None:
    deliver(json.loads(record.body)["detail"])


handler = sqs_worker(record_handler)
