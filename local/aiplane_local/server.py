"""The local HTTP server: every family mounted under its base path, as API Gateway would, and the
mlworker and gpufarm WebSockets (`websocket_gateway`)."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from aiplane_local import websocket_gateway
from aiplane_shared.families import APPPROXY, FAMILIES, base_path
from functions.family_app import build_family_app


def build_root_app() -> FastAPI:
    root = FastAPI(title="aiplane (local)", openapi_url=None, docs_url=None, redoc_url=None)

    @root.get("/")
    def index() -> dict[str, object]:
        return {"service": "aiplane", "families": {family: f"{base_path(family)}/openapi.json" for family in FAMILIES}}

    root.router.routes.extend(websocket_gateway.routes())  # ahead of the mounts, which would take /<family>/ws
    for family in FAMILIES:
        root.mount(base_path(family), build_family_app(family))
    return root


def build_coordinator_app() -> FastAPI:
    """The appproxy family alone at the root: Backend.AI workers join absolute paths to their
    coordinator URL (aiohttp's base_url), so they need a host where `/api/worker` is the path."""
    return build_family_app(APPPROXY)


class BackgroundServer:
    """The local root app (or another ASGI app) served on a free loopback port in a thread of this
    process: what the e2e tests and the benchmarks talk HTTP (and WebSocket) to."""

    def __init__(self, app: FastAPI | None = None, *, start_timeout_s: float = 20.0, **config: object) -> None:
        from aiplane_local.stack import free_port  # stack.py imports the domain layer: after the endpoint is set

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app or build_root_app(), host="127.0.0.1", port=self.port, log_level="warning", **config)
        )  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.server.run, name=f"server-{self.port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + start_timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the local server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=timeout_s)
