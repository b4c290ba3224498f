"""runtime jobs routes.

Contract rows of this group:
- GET /jobs/in-progress
- GET /jobs/pending
- PATCH /jobs/{id}/done
- PATCH /jobs/{id}/failed
- POST /leases
"""

from fastapi import APIRouter

router = APIRouter()
