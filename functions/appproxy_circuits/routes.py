"""appproxy circuits routes.

Contract rows of this group:
- DELETE /api/circuit/_/bulk
- DELETE /api/circuit/{circuit_id}
- GET /api/circuit/{circuit_id}
- GET /api/circuit/{circuit_id}/statistics
"""

from fastapi import APIRouter

router = APIRouter()
