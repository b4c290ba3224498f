"""Assemble resource-group routers into apps: one per group for Lambda, one per family for the
local server and for the family's OpenAPI document. Both use the very same routers."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from fastapi import APIRouter, FastAPI

from aiplane.api.app import create_family_app
from aiplane_shared.routes import OPENAPI_PATH, function_name, groups_of


def router_of(family: str, group: str) -> APIRouter:
    return importlib.import_module(f"functions.{function_name(family, group)}.routes").router


def build_group_app(family: str, group: str) -> FastAPI:
    return create_family_app(family, [router_of(family, group)], groups={group})


@cache
def build_family_app(family: str) -> FastAPI:
    return create_family_app(family, [router_of(family, group) for group in groups_of(family)])


def openapi_router(family: str) -> APIRouter:
    """The family's OpenAPI document, for the group that serves it. It describes every route of
    the family, so it is built from the whole family app (imported on first request)."""
    router = APIRouter()

    @router.get(OPENAPI_PATH, include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return build_family_app(family).openapi()

    return router
