"""gpufarm models routes.

Contract rows of this group:
- DELETE /api/v1/models/{model_id}
- GET /api/v1/models
- GET /api/v1/models/formats
- GET /api/v1/models/{model_id}
- GET /api/v1/models/{model_id}/metrics
- POST /api/v1/models/upload
- POST /api/v1/models/{model_id}/predict
"""

from fastapi import APIRouter

router = APIRouter()
