"""gpufarm agents routes.

Contract rows of this group:
- GET /api/v1/mcp/sse
- POST /api/v1/agent
- POST /api/v1/mcp
"""

from fastapi import APIRouter

router = APIRouter()
