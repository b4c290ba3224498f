"""Model-download worker: fed by the model-downloads queue, one `{"jobId": ...}` per message (batch size 1).

A job pulls a model onto an ollama backend through /api/pull and writes its progress, for a slice of
time that ends before this function's timeout; meanwhile the message's visibility is extended. An
unreachable backend fails the message so SQS retries it (then the DLQ).
"""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from aiplane.api.lambda_entry import sqs_worker
from aiplane.gateway import messaging, pulls
from aiplane.observability import logger
from aiplane_shared.resources import MODEL_DOWNLOAD_QUEUE

VISIBILITY_S = MODEL_DOWNLOAD_QUEUE.visibility_timeout_s or MODEL_DOWNLOAD_QUEUE.consumer_timeout_s
SLICE_MARGIN_S = 60  # left to close the pull, requeue it and report (a fifth of a shorter timeout)


def pull(record: SQSRecord, lambda_context) -> None:
    def heartbeat() -> None:
        try:
            messaging.extend_visibility(record.event_source_arn, record.receipt_handle, VISIBILITY_S)
        except (BotoCoreError, ClientError) as error:  # a missed extension must not stop a progressing pull
            logger.warning("message visibility not extended", extra={"error": str(error)})

    remaining_s = lambda_context.get_remaining_time_in_millis() / 1000
    slice_s = max(1.0, min(pulls.PULL_SLICE_S, remaining_s - min(SLICE_MARGIN_S, remaining_s / 5)))
    pulls.run_job(json.loads(record.body)["jobId"], slice_s=slice_s, heartbeat=heartbeat)


handler = sqs_worker(pull)
