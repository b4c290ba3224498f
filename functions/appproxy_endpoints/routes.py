"""appproxy endpoints routes.

Contract rows of this group:
- DELETE /v2/endpoints/{endpoint_id}
- POST /v2/endpoints/{endpoint_id}
- POST /v2/endpoints/{endpoint_id}/token
"""

from fastapi import APIRouter

from aiplane.appproxy import endpoints
from aiplane.appproxy.schemas import EndpointCreationRequest, EndpointTokenRequest

router = APIRouter()


@router.post("/v2/endpoints/{endpoint_id}")
def upsert_endpoint(endpoint_id: str, body: EndpointCreationRequest) -> dict[str, str]:
    return {"endpoint": endpoints.upsert_endpoint(endpoint_id, body)}


@router.delete("/v2/endpoints/{endpoint_id}")
def remove_endpoint(endpoint_id: str) -> dict[str, bool]:
    endpoints.remove_endpoint(endpoint_id)
    return {"success": True}


@router.post("/v2/endpoints/{endpoint_id}/token")
def endpoint_token(endpoint_id: str, body: EndpointTokenRequest) -> dict[str, str]:
    return {"token": endpoints.issue_endpoint_token(endpoint_id, body)}
