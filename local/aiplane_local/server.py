"""The local HTTP server: every family mounted under its base path, as API Gateway would, and the
mlworker and gpufarm WebSockets (`websocket_gateway`)."""

from __future__ import annotations

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
