"""Serve one group's app with uvicorn on 127.0.0.1:$AWS_LWA_PORT, for the Lambda Web Adapter.

The group is `$AIPLANE_FUNCTION` (e.g. `runtime_exec`); its app is built from the very routers the
buffered Lambda and `make run` serve (`functions/family_app.py`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import uvicorn

from aiplane.api.lambda_entry import warm_clients
from aiplane.cold_start import init_done
from aiplane_shared.streaming import FUNCTION_VARIABLE
from functions.family_app import build_group_app


class AdapterRequestContext:
    """ASGI middleware: expose API Gateway's request context as Mangum does.

    The adapter puts the invocation's request context in `x-amzn-request-context`, replacing any
    such header a client sent, and only the adapter reaches 127.0.0.1. Under `aws.event` the auth
    path finds the authorizer's principal, and the caller's address is its `sourceIp`.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw = dict(scope["headers"]).get(b"x-amzn-request-context")
            if raw:
                context = json.loads(raw)
                scope = {**scope, "aws.event": {"requestContext": context}}
                source_ip = (context.get("identity") or {}).get("sourceIp")
                if source_ip:
                    scope["client"] = (source_ip, 0)
        await self.app(scope, receive, send)


def main() -> None:
    family, group = os.environ[FUNCTION_VARIABLE].split("_", 1)
    app = AdapterRequestContext(build_group_app(family, group))
    warm_clients()
    init_done()  # the end of init (aiplane.cold_start)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["AWS_LWA_PORT"]),
        lifespan="off",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
