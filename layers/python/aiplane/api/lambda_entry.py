"""The Lambda entry points: a FastAPI app behind Mangum, and the SQS-fed workers (queues and
scheduled ticks). Both put the Lambda context in every log line and trace when tracing is on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from mangum import Mangum

from aiplane.cold_start import init_done
from aiplane.data.models import ApiKeyRecord
from aiplane.observability import logger, tracer
from aiplane_shared.families import base_path

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
WorkerHandler = Callable[[dict[str, Any], Any], "PartialItemFailureResponse"]


def warm_clients() -> None:
    """Create at init the DynamoDB client the auth path of every request uses (PynamoDB's, for the
    identity table): init runs with Lambda's full CPU, and under SnapStart it is in the snapshot
    rather than in the first request. botocore reconnects connections a restore left stale."""
    ApiKeyRecord._get_connection().connection.client  # noqa: B018 (the property creates the client)


def _observed(handle: Callable[[dict[str, Any], Any], Any]) -> Any:
    """The handler with its log context and trace; the last step of init (`init_done`)."""
    active_tracer = tracer()
    if active_tracer is not None:
        handle = active_tracer.capture_lambda_handler(handle)
    observed = logger.inject_lambda_context(handle, clear_state=True)
    init_done()
    return observed


def make_lambda_handler(app: FastAPI, family: str) -> LambdaHandler:
    # Behind a custom domain the base path mapping keeps /<family> in the path; strip it.
    asgi = Mangum(app, lifespan="off", api_gateway_base_path=base_path(family))

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return asgi(event, context)

    warm_clients()
    return _observed(handle)


def sqs_worker(record_handler: Callable[[SQSRecord], None] | Callable[[SQSRecord, Any], None]) -> WorkerHandler:
    """A handler for an SQS-fed function: each record is handled on its own and only the records
    that raised are reported back (partial batch failures), so SQS retries just those. A record
    handler with a `lambda_context` parameter gets the Lambda context (Powertools passes it)."""
    # Imported here: Powertools' batch utility would add about 40 ms to every API function's cold
    # start, and only workers use it.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS)

    def handle(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return _observed(handle)
