"""Provisioning queue worker: contract launches, EC2 state changes, lease sweeps and reconciliation."""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.gpufarm.provisioner import give_up, handle_message, max_receive_count


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


handler = sqs_worker(handle_record)
