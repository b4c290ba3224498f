"""gpufarm auth routes.

Contract rows of this group:
- GET /api/v1/user/export
- POST /api/v1/auth/apikey
- POST /api/v1/auth/login
- POST /api/v1/auth/register
"""

from fastapi import APIRouter

router = APIRouter()
