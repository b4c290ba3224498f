"""runtime functions routes.

Contract rows of this group:
- DELETE /event-triggers/{name}
- DELETE /functions/{name}
- GET /event-triggers
- GET /event-triggers/event-type/{eventType}
- GET /event-triggers/function/{functionName}
- GET /event-triggers/{name}
- GET /functions
- GET /functions/{name}
- POST /event-triggers
- POST /functions
- PUT /event-triggers/{name}
- PUT /functions/{name}
"""

from fastapi import APIRouter

router = APIRouter()
