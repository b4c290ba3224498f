"""runtime exec routes.

Contract rows of this group:
- GET /defaultmodel
- GET /supported
- POST /embed
- POST /execute
- POST /v1/chat/completions
"""

from fastapi import APIRouter

from functions.runtime_exec import supported

router = APIRouter()
router.include_router(supported.router)
