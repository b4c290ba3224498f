"""Scheduled tick (via its SQS queue): return jobs whose lease ran out to the pending queue (and
wake the file indexer when indexing jobs are among them)."""

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aiplane.api.lambda_entry import sqs_worker
from aiplane.events.jobs import return_expired_leases
from aiplane.files import indexing
from aiplane.files.models import INDEX_FILE_TASK
from aiplane.observability import logger


def record_handler(record: SQSRecord) -> None:
    returned = return_expired_leases()
    if returned:
        logger.info("expired job leases returned to the queue", extra={"jobs": len(returned)})
    if INDEX_FILE_TASK in returned:
        indexing.wake_indexer()


handler = sqs_worker(record_handler)
