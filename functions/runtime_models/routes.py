"""runtime models routes.

Contract rows of this group:
- DELETE /models/{id}
- GET /internal/models
- GET /models
- POST /models
- PUT /models/{id}
"""

from fastapi import APIRouter

router = APIRouter()
