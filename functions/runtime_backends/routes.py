"""runtime backends routes.

Contract rows of this group:
- DELETE /backends/{id}
- GET /backends
- GET /backends/{id}
- GET /state
- POST /backends
- PUT /backends/{id}
"""

from fastapi import APIRouter

router = APIRouter()
