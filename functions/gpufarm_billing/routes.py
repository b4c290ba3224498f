"""gpufarm billing routes.

Contract rows of this group:
- GET /api/v1/billing/transactions
- GET /api/v1/guardrails/spending
- GET /api/v1/quota
- POST /api/v1/billing/payment
- POST /api/v1/guardrails/spending/check
- POST /api/v1/guardrails/spending/record
- POST /api/v1/guardrails/spending/reset
"""

from fastapi import APIRouter

router = APIRouter()
