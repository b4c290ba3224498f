"""Sync worker: fed by the gateway-sync queue (schedule ticks and backend writes).

A tick (an EventBridge Scheduled Event) reconciles every backend; `{"backendId": ...}` one.
"""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.gateway import sync


def reconcile(record: SQSRecord) -> None:
    body = json.loads(record.body)
    if body.get("backendId"):
        sync.sync_one(body["backendId"])
    else:
        sync.sync_all()


handler = sqs_worker(reconcile)
