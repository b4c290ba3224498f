"""The Lambda entry point for a FastAPI app: Mangum plus Powertools."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from mangum import Mangum

from aiplane.data.models import ApiKeyRecord
from aiplane.observability import logger, metrics, tracer
from aiplane_shared.families import base_path

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def warm_clients() -> None:
    """Create at init the DynamoDB client the auth path of every request uses (PynamoDB's, for the
    identity table): init runs with Lambda's full CPU, and under SnapStart it is in the snapshot
    rather than in the first request. botocore reconnects connections a restore left stale."""
    ApiKeyRecord._get_connection().connection.client  # noqa: B018 (the property creates the client)


def make_lambda_handler(app: FastAPI, family: str) -> LambdaHandler:
    # Behind a custom domain the base path mapping keeps /<family> in the path; strip it.
    asgi = Mangum(app, lifespan="off", api_gateway_base_path=base_path(family))

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return asgi(event, context)

    handle = metrics.log_metrics(handle)
    active_tracer = tracer()
    if active_tracer is not None:
        handle = active_tracer.capture_lambda_handler(handle)
    warm_clients()
    return logger.inject_lambda_context(handle, clear_state=True)
