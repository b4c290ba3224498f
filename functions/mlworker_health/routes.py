"""mlworker health routes.

Contract rows of this group:
- GET /health
"""

from fastapi import APIRouter

from aiplane.clock import now_iso
from aiplane.health import check_database
from aiplane.version import VERSION
from functions.family_app import openapi_router

router = APIRouter()
router.include_router(openapi_router("mlworker"))


@router.get("/health")
def health() -> dict[str, str]:
    # HealthResponse: healthy | degraded | unhealthy. The API answers without its database, degraded.
    status = "healthy" if check_database().healthy else "degraded"
    return {"status": status, "version": VERSION, "timestamp": now_iso()}
