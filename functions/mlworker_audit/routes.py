"""mlworker audit routes.

Contract rows of this group:
- GET /v1/audit/chain-root
- GET /v1/audit/events
- POST /v1/audit/verify
"""

from fastapi import APIRouter

router = APIRouter()
