"""appproxy health routes.

Contract rows of this group:
- GET /health
- GET /health/status
Beyond the contract: GET /status, the Backend.AI manager's probe.
"""

from typing import Any

from fastapi import APIRouter

from aiplane.appproxy.health import coordinator_status
from functions.family_app import openapi_router

router = APIRouter()
router.include_router(openapi_router("appproxy"))


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/status", include_in_schema=False)
def status() -> dict[str, str]:
    return {"api_version": "v2"}


@router.get("/health/status")
def health_status() -> dict[str, Any]:
    return coordinator_status()
