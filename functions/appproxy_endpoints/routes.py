"""appproxy endpoints routes.

Contract rows of this group:
- DELETE /v2/endpoints/{endpoint_id}
- POST /v2/endpoints/{endpoint_id}
- POST /v2/endpoints/{endpoint_id}/token
"""

from fastapi import APIRouter

router = APIRouter()
