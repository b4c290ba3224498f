"""gpufarm gpu routes.

Contract rows of this group:
- DELETE /api/v1/gpu/instances/{provider}/{instanceId}
- GET /api/v1/gpu/available
- GET /api/v1/gpu/examples
- GET /api/v1/gpu/instances
- GET /api/v1/gpu/preferences
- POST /api/v1/gpu/instances/batch
- POST /api/v1/gpu/instances/reserve
- POST /api/v1/gpu/instances/{provider}/{instanceId}
- POST /api/v1/gpu/preferences
- POST /api/v1/gpu/preferences/test
- POST /api/v1/gpu/proxy
"""

from fastapi import APIRouter

router = APIRouter()
