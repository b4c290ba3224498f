"""runtime system routes.

Contract rows of this group:
- GET /system/resources
- GET /system/services
- POST /executor/sync
"""

from fastapi import APIRouter

from functions.family_app import openapi_router

router = APIRouter()
router.include_router(openapi_router("runtime"))
