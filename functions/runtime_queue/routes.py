"""runtime queue routes.

Contract rows of this group:
- DELETE /queue/cancel
- DELETE /queue/{model}
- GET /queue
- GET /queue/inProgress
"""

from fastapi import APIRouter

router = APIRouter()
