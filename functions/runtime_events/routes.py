"""runtime events routes.

Contract rows of this group:
- DELETE /events/type
- DELETE /mapping
- GET /events/aggregate
- GET /events/source
- GET /events/stream/{eventType}
- GET /events/type
- GET /events/types
- GET /mapping
- GET /mappings
- GET /raw-events
- GET /raw-events/{nid}
- POST /events
- POST /ingest
- POST /mappings
- POST /raw-events
- POST /replay
- POST /sync
- PUT /mapping
"""

from fastapi import APIRouter

router = APIRouter()
