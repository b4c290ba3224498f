"""gpufarm loadbalancer routes.

Contract rows of this group:
- GET /api/v1/loadbalancer/load
- GET /api/v1/loadbalancer/loads
- GET /api/v1/loadbalancer/strategy
- PUT /api/v1/loadbalancer/strategy
"""

from fastapi import APIRouter

router = APIRouter()
