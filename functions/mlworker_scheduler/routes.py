"""mlworker scheduler routes.

Contract rows of this group:
- DELETE /v1/scheduler/workers/{workerId}
- GET /v1/scheduler/jobs/{jobId}/stream
- GET /v1/scheduler/reservations
- GET /v1/scheduler/status
- GET /v1/scheduler/status/stream
- GET /v1/scheduler/workers
- GET /v1/scheduler/workers/{workerId}
- PATCH /v1/scheduler/jobs/{jobId}/priority
- POST /v1/scheduler/reservations
"""

from fastapi import APIRouter

router = APIRouter()
