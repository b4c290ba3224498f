"""runtime users routes.

Contract rows of this group:
- DELETE /users/{id}
- GET /users
- GET /users/{id}
- POST /users
- PUT /users/{id}
"""

from fastapi import APIRouter

router = APIRouter()
