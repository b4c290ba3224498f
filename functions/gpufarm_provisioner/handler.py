"""Provisioning queue worker: contract launches, EC2 state-change events and lease sweeps."""

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.gpufarm.provisioner import handle_message

processor = BatchProcessor(event_type=EventType.SQS)


def handle_record(record: SQSRecord) -> None:
    handle_message(json.loads(record.body))


def handler(event, context):
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
