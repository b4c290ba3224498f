"""runtime groups routes.

Contract rows of this group:
- DELETE /backend-affinity/{groupID}/backends/{backendID}
- DELETE /backend-associations/{poolID}/backends/{backendID}
- DELETE /groups/{id}
- DELETE /model-affinity/{groupID}/models/{modelID}
- DELETE /model-associations/{poolID}/models/{modelID}
- DELETE /pools/{id}
- GET /backend-affinity/{backendID}/groups
- GET /backend-affinity/{groupID}/backends
- GET /backend-associations/{backendID}/pools
- GET /backend-associations/{poolID}/backends
- GET /group-by-name/{name}
- GET /group-by-purpose/{purpose}
- GET /groups
- GET /groups/{id}
- GET /model-affinity/{groupID}/models
- GET /model-affinity/{modelID}/groups
- GET /model-associations/{modelID}/pools
- GET /model-associations/{poolID}/models
- GET /pool-by-name/{name}
- GET /pool-by-purpose/{purpose}
- GET /pools
- GET /pools/{id}
- POST /backend-affinity/{groupID}/backends/{backendID}
- POST /backend-associations/{poolID}/backends/{backendID}
- POST /groups
- POST /model-affinity/{groupID}/models/{modelID}
- POST /model-associations/{poolID}/models/{modelID}
- POST /pools
- PUT /groups/{id}
- PUT /pools/{id}
"""

from fastapi import APIRouter

router = APIRouter()
