"""appproxy workers routes.

Contract rows of this group:
- DELETE /api/worker/{worker_id}
- GET /api/slots
- GET /api/worker
- GET /api/worker/{worker_id}
- GET /api/worker/{worker_id}/circuits
- PATCH /api/worker/{worker_id}
- PUT /api/worker
"""

from fastapi import APIRouter

router = APIRouter()
