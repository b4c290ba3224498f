"""Model-download worker: fed by the model-downloads queue, one `{"jobId": ...}` per message.

A job pulls a model onto an ollama backend through /api/pull and writes its progress; an
unreachable backend fails the message so SQS retries it (then the DLQ).
"""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.gateway import downloads


def pull(record: SQSRecord) -> None:
    downloads.run_job(json.loads(record.body)["jobId"])


handler = sqs_worker(pull)
