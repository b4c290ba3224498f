"""The family WebSocket APIs' routes, as API Gateway invokes them (`$connect`, `$disconnect`,
`$default`; the local harness sends the same events).

`$connect` authenticates with the family's HTTP credential scheme (`aiplane.identity.authenticate`,
the same checks as `aiplane.api.auth`) and refuses with the family's error envelope; `$default`
answers the family's protocol as the route response.
"""

from __future__ import annotations

import json
from typing import Any

from aiplane.api.envelopes import error_body
from aiplane.errors import AiplaneError
from aiplane.identity.authenticate import Credentials, authenticate, require_access, require_family
from aiplane.identity.rate_limits import limit_request_rate
from aiplane.live import connections, protocol
from aiplane.observability import logger
from aiplane_shared.routes import AUTHENTICATED


def _answer(status: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"statusCode": status, **({"body": json.dumps(body)} if body is not None else {})}


def handle(family: str, event: dict[str, Any]) -> dict[str, Any]:
    context = event.get("requestContext") or {}
    route, connection_id = context.get("routeKey"), context.get("connectionId", "")
    if route == "$connect":
        try:
            headers = {
                **{k: v[-1] for k, v in (event.get("multiValueHeaders") or {}).items() if v},
                **(event.get("headers") or {}),
            }
            source_ip = (context.get("identity") or {}).get("sourceIp")
            principal = authenticate(family, Credentials.from_headers(headers), source_ip=source_ip)
            require_access(principal, AUTHENTICATED)
            require_family(family, principal)
            limit_request_rate(family, principal)
        except AiplaneError as refused:
            return _answer(refused.status, error_body(family, refused, context.get("requestId", "")))
        connections.connect(family, principal, connection_id)
        logger.info("WebSocket connected", extra={"family": family, "connection_id": connection_id})
        return _answer(200)
    if route == "$disconnect":
        connections.disconnect(connection_id)
        return _answer(200)
    record = connections.find(connection_id)
    if record is None or record.family != family:
        return _answer(410, {"type": "error", "error": "connection is not open"})
    reply = protocol.reply_to(family, event.get("body") or "")
    if reply.subscribe and not record.subscribed:
        connections.subscribe(record)
    return _answer(200, reply.message)
