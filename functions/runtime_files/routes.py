"""runtime files routes.

Contract rows of this group:
- DELETE /files/{id}
- DELETE /folders/{id}
- GET /files
- GET /files/{id}
- GET /files/{id}/download
- POST /files
- POST /folders
- PUT /files/{id}
- PUT /files/{id}/move
- PUT /files/{id}/name
- PUT /folders/{id}/move
- PUT /folders/{id}/name
"""

from fastapi import APIRouter

router = APIRouter()
