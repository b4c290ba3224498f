"""runtime exec routes.

Contract rows of this group:
- GET /defaultmodel
- GET /supported
- POST /embed
- POST /execute
- POST /v1/chat/completions
"""

from fastapi import APIRouter

router = APIRouter()
