"""runtime system routes: resource types, service health (view on `system`), executor sync
(edit on `system`), and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from aiplane.activity.tracker import tracked
from aiplane.api.permissions import resource_permission
from aiplane.system import services
from functions.family_app import openapi_router

router = APIRouter()
router.include_router(openapi_router("runtime"))
system = APIRouter(dependencies=[Depends(tracked("system")), Depends(resource_permission("system"))])


@system.get("/system/resources")
def resource_types() -> list[str]:
    return list(services.RESOURCE_TYPES)


@system.get("/system/services")
def service_health() -> list[dict[str, Any]]:
    return services.services()


@system.post("/executor/sync")
def executor_sync() -> str:
    return services.EXECUTOR_SYNC_ANSWER


router.include_router(system)
