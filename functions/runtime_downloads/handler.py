"""Model-download worker: fed by the model-downloads queue, one `{"jobId": ...}` per message.

A job pulls a model onto an ollama backend through /api/pull and writes its progress; an
unreachable backend fails the message so SQS retries it (then the DLQ).
"""

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.gateway import downloads

processor = BatchProcessor(event_type=EventType.SQS)


def pull(record: SQSRecord) -> None:
    downloads.run_job(json.loads(record.body)["jobId"])


def handler(event, context):
    return process_partial_response(event=event, record_handler=pull, processor=processor, context=context)
