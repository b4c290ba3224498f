"""runtime providers routes.

Contract rows of this group:
- DELETE /providers/{providerType}/config
- GET /providers/configs
- GET /providers/{providerType}/config
"""

from fastapi import APIRouter

router = APIRouter()
