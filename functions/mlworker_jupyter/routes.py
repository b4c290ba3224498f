"""mlworker jupyter routes.

Contract rows of this group:
- DELETE /v1/jupyter/services/{serviceId}
- GET /v1/jupyter/services
- POST /v1/jupyter/services
"""

from fastapi import APIRouter

router = APIRouter()
