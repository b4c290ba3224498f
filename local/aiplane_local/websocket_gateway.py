"""The local stand-in for API Gateway's WebSocket APIs: it holds the sockets.

`ws://<host>/<family>/ws` is served by uvicorn; each connect, message and disconnect is handed to
the family's WebSocket route code (`aiplane.live.websocket.handle`) as the `$connect`,
`$default` and `$disconnect` events API Gateway sends its Lambda, and `$default`'s body is sent
back as the route response. The management API (`POST|DELETE /_connections/<family>/@connections/<id>`,
PostToConnection and DeleteConnection, answering 410 GoneException for a closed connection) is
what the sender reaches through boto3 locally; its endpoint is published as in the cloud.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from aiplane.live.websocket import handle
from aiplane_shared.families import base_path
from aiplane_shared.resources import WEBSOCKET_FAMILIES

MANAGEMENT_PREFIX = "/_connections"


@dataclass
class _Socket:
    websocket: WebSocket
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, text: str) -> None:
        async with self.lock:
            await self.websocket.send_text(text)


_OPEN: dict[str, _Socket] = {}


def _event(route_key: str, connection_id: str, websocket: WebSocket, body: str | None = None) -> dict[str, Any]:
    context = {
        "routeKey": route_key,
        "eventType": route_key.strip("$").upper() if route_key != "$default" else "MESSAGE",
        "connectionId": connection_id,
        "requestId": str(uuid.uuid4()),
        "apiId": "local",
        "stage": "local",
        "domainName": websocket.url.netloc,
        "connectedAt": int(time.time() * 1000),
        "identity": {"sourceIp": websocket.client.host if websocket.client else None},
    }
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if route_key == "$connect":
        event["headers"] = dict(websocket.headers)
    if body is not None:
        event["body"] = body
    return event


def _endpoint(family: str):
    async def serve(websocket: WebSocket) -> None:
        connection_id = uuid.uuid4().hex
        answer = await run_in_threadpool(handle, family, _event("$connect", connection_id, websocket))
        if answer["statusCode"] != 200:
            await websocket.send_denial_response(
                Response(answer.get("body", ""), status_code=answer["statusCode"], media_type="application/json")
            )
            return
        await websocket.accept()
        socket = _OPEN[connection_id] = _Socket(websocket)
        try:
            while True:
                text = await websocket.receive_text()
                reply = await run_in_threadpool(handle, family, _event("$default", connection_id, websocket, text))
                if reply.get("body"):
                    await socket.send(reply["body"])
        except WebSocketDisconnect:
            pass
        finally:
            _OPEN.pop(connection_id, None)
            await run_in_threadpool(handle, family, _event("$disconnect", connection_id, websocket))

    return serve


def _gone(connection_id: str) -> Response:
    return JSONResponse(
        {"message": f"connection {connection_id} is gone"},
        status_code=410,
        headers={"x-amzn-ErrorType": "GoneException"},
    )


async def _manage(request: Request) -> Response:
    if not request.client or not ipaddress.ip_address(request.client.host).is_loopback:  # the sender runs here
        return JSONResponse({"message": "the management API answers loopback callers only"}, status_code=403)
    connection_id = request.path_params["connection_id"]
    socket = _OPEN.get(connection_id)
    if socket is None:
        return _gone(connection_id)
    if request.method == "DELETE":
        await socket.websocket.close()
        return Response(status_code=204)
    try:
        await socket.send((await request.body()).decode())
    except (RuntimeError, WebSocketDisconnect):
        return _gone(connection_id)
    return Response(status_code=200)


def routes() -> list[Any]:
    """The sockets and the management API, to register ahead of the family mounts."""
    found: list[Any] = [WebSocketRoute(f"{base_path(family)}/ws", _endpoint(family)) for family in WEBSOCKET_FAMILIES]
    found.append(
        Route(f"{MANAGEMENT_PREFIX}/{{family}}/@connections/{{connection_id}}", _manage, methods=["POST", "DELETE"])
    )
    return found


def management_url(base_url: str, family: str) -> str:
    return f"{base_url}{MANAGEMENT_PREFIX}/{family}"
