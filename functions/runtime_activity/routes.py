"""runtime activity routes.

Contract rows of this group:
- GET /activity/alerts
- GET /activity/operations
- GET /activity/operations/{op}/{subject}
- GET /activity/requests
- GET /activity/requests/{id}
- GET /activity/requests/{id}/state
- GET /activity/stateful-requests
"""

from fastapi import APIRouter

router = APIRouter()
