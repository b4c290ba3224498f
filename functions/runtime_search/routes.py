"""runtime search routes.

Contract rows of this group:
- GET /keywords
- GET /search
- POST /index
"""

from fastapi import APIRouter

router = APIRouter()
