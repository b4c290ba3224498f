"""Spend-log worker: fed by the gateway-spend-logs queue, one request's usage and cost per message.

Each message is settled once (`aiplane.gateway.spend.settle`); a message that fails is retried by SQS,
then kept in the DLQ, so no spend is ever lost.
"""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.gateway import spend


def settle(record: SQSRecord) -> None:
    spend.settle(json.loads(record.body))


handler = sqs_worker(settle)
