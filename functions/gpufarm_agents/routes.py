"""gpufarm agents routes: MCP over HTTP (JSON-RPC 2.0), the MCP SSE stream, the unified handler.

Contract rows of this group:
- GET /api/v1/mcp/sse (bounded window; ends by itself)
- POST /api/v1/agent
- POST /api/v1/mcp
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from aiplane.api.auth import current_principal
from aiplane.commerce import agents
from aiplane.errors import ValidationError

router = APIRouter()

SSE_HEARTBEAT_S = 2.0
SSE_DEFAULT_WINDOW_S = 4.0
SSE_MAX_WINDOW_S = 25.0  # under API Gateway's 29 s integration limit


def _answer(result: object) -> Response:
    # A body of notifications only is accepted without a response body (MCP streamable HTTP).
    return Response(status_code=202) if result is None else JSONResponse(result)


@router.post("/api/v1/mcp")
async def mcp(request: Request) -> Response:
    principal = current_principal(request)
    return _answer(await run_in_threadpool(agents.handle_mcp_body, principal, await request.body()))


@router.get("/api/v1/mcp/sse")
def mcp_sse(request: Request, window_s: float | None = None) -> StreamingResponse:
    current_principal(request)
    window = SSE_DEFAULT_WINDOW_S if window_s is None else window_s
    if not 0 < window <= SSE_MAX_WINDOW_S:
        raise ValidationError(f"window_s must be in (0, {SSE_MAX_WINDOW_S:g}]", param="window_s")
    post_path = f"{request.scope.get('root_path', '')}/api/v1/mcp"
    events = agents.sse_events(post_path, window_s=window, heartbeat_s=SSE_HEARTBEAT_S, sleep=time.sleep)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/api/v1/agent")
async def agent(request: Request) -> Response:
    principal = current_principal(request)
    return _answer(await run_in_threadpool(agents.handle_agent, principal, await request.body()))
