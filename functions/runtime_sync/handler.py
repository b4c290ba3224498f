"""Sync worker: fed by the gateway-sync queue (schedule ticks and backend writes).

A tick (an EventBridge Scheduled Event) reconciles every backend; `{"backendId": ...}` one.
"""

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.gateway import sync

processor = BatchProcessor(event_type=EventType.SQS)


def reconcile(record: SQSRecord) -> None:
    body = json.loads(record.body)
    if body.get("backendId"):
        sync.sync_one(body["backendId"])
    else:
        sync.sync_all()


def handler(event, context):
    return process_partial_response(event=event, record_handler=reconcile, processor=processor, context=context)
