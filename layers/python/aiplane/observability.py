"""Powertools Logger and (only when tracing is on) Tracer.

Tracer imports aws_xray_sdk, which costs about 250 ms of cold start even with tracing disabled,
so it is created only when the environment enables tracing. It patches only the clients aiplane
uses: botocore (PynamoDB's calls included) at init, and httpx when the first outbound client is
built (`trace_http_clients`), so that functions that never call out do not import httpx at init.
X-Ray's default patches every supported library, which imports sqlite3 and others at init and
records each DynamoDB call twice (botocore's and PynamoDB's subsegment).

One correlation id per request: API Gateway's request id, the `$context.requestId` its gateway
responses and access logs carry. It is in every log line of the request and in every error body.
"""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from aiplane.settings import get_settings

SERVICE = "aiplane"
TRACED_MODULES = ("botocore",)

logger = Logger(service=SERVICE)


_CORRELATION_ID = "aiplane.correlation_id"


def correlation_id(scope: MutableMapping[str, Any]) -> str:
    """The request's id: API Gateway's (from Mangum's event, or the Web Adapter's request context);
    locally, where no gateway stands in front, the client's `x-request-id` or a fresh one. Kept in the
    ASGI scope, so that every use within one request agrees."""
    known = scope.get(_CORRELATION_ID)
    if known:
        return known
    context = (scope.get("aws.event") or {}).get("requestContext") or {}
    found = (
        context.get("requestId")
        or dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        or str(uuid.uuid4())
    )
    scope[_CORRELATION_ID] = found
    return found


class Correlated:
    """ASGI middleware: the request's correlation id goes into every log line while it runs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            logger.set_correlation_id(correlation_id(scope))
        await self.app(scope, receive, send)


@cache
def tracer() -> Any | None:
    if not get_settings().tracing_enabled:
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE, patch_modules=TRACED_MODULES)


@cache
def trace_http_clients() -> None:
    """Trace httpx's calls from here on (X-Ray swaps `httpx.Client` for its instrumented one)."""
    if tracer() is not None:
        from aws_xray_sdk.core import patch

        patch(["httpx"])
