"""Provisioning queue worker: contract launches, EC2 state changes, lease sweeps and reconciliation."""

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.gpufarm.provisioner import give_up, handle_message, max_receive_count

processor = BatchProcessor(event_type=EventType.SQS)


def handle_record(record: SQSRecord) -> None:
    message = None
    try:
        message = json.loads(record.body)
        handle_message(message)
    except Exception as error:
        # The last delivery before the DLQ: the contract must not wait in `provisioning` forever.
        if int(record.attributes.approximate_receive_count) >= max_receive_count(record.event_source_arn):
            give_up(message, error)
        raise


def handler(event, context):
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
