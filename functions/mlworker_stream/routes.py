"""mlworker stream routes.

Contract rows of this group:
- GET /ws
"""

from fastapi import APIRouter

router = APIRouter()
