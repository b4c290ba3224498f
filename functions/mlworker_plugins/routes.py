"""mlworker plugins routes.

Contract rows of this group:
- DELETE /v1/plugins/{pluginName}/config
- GET /v1/plugins
- GET /v1/plugins/{pluginName}
- GET /v1/plugins/{pluginName}/config
- GET /v1/plugins/{pluginName}/health
- PUT /v1/plugins/{pluginName}/config
"""

from fastapi import APIRouter

router = APIRouter()
