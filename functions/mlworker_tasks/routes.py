"""mlworker tasks routes.

Contract rows of this group:
- DELETE /v1/tasks/{taskId}
- GET /v1/queue
- GET /v1/tasks
- GET /v1/tasks/{taskId}
- POST /v1/tasks
"""

from fastapi import APIRouter

router = APIRouter()
