"""mlworker experiments routes.

Contract rows of this group:
- GET /v1/experiments
- POST /v1/experiments
"""

from fastapi import APIRouter

router = APIRouter()
