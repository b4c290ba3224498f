"""File indexer (via its SQS queue): each message, sent when a file's content changed, wakes it to
lease and index pending indexing jobs (aiplane.files.indexer)."""

import uuid
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.files import indexer

MARGIN_MS = 60_000  # stop leasing while one more file still fits in the function's time


def record_handler(record: SQSRecord, lambda_context: Any) -> None:
    budget_s = (lambda_context.get_remaining_time_in_millis() - MARGIN_MS) / 1000
    indexer.index_pending(f"runtime-indexer-{uuid.uuid4()}", max(1.0, budget_s))


handler = sqs_worker(record_handler)
