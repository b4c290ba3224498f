"""runtime access routes.

Contract rows of this group:
- DELETE /access-control/{id}
- GET /access-control
- GET /access-control/{id}
- GET /permissions
- POST /access-control
- PUT /access-control/{id}
"""

from fastapi import APIRouter

router = APIRouter()
