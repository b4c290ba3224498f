"""Spend-log worker: fed by the gateway-spend-logs queue, one request's usage and cost per message.

Each message is settled once (`aiplane.gateway.spend.settle`); a message that fails is retried by SQS,
then kept in the DLQ, so no spend is ever lost.
"""

import json

from aiplane.gateway import spend
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

processor = BatchProcessor(event_type=EventType.SQS)


def settle(record: SQSRecord) -> None:
    spend.settle(json.loads(record.body))


def handler(event, context):
    return process_partial_response(event=event, record_handler=settle, processor=processor, context=context)
