"""runtime hooks routes.

Contract rows of this group:
- DELETE /hooks/remote/{id}
- GET /hooks/remote
- GET /hooks/remote/by-name/{name}
- GET /hooks/remote/{id}
- GET /hooks/schemas
- POST /hooks/remote
- PUT /hooks/remote/{id}
"""

from fastapi import APIRouter

router = APIRouter()
