"""appproxy proxy routes.

Contract rows of this group:
- GET /v2/proxy/auth
- GET /v2/proxy/{token}/{session_id}/add
- POST /v2/conf
"""

from fastapi import APIRouter

router = APIRouter()
