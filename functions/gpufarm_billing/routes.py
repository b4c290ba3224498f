"""gpufarm billing routes: payments and transactions, spending guardrails, storage quota.

Contract rows of this group:
- GET /api/v1/billing/transactions
- GET /api/v1/guardrails/spending
- GET /api/v1/quota
- POST /api/v1/billing/payment
- POST /api/v1/guardrails/spending/check
- POST /api/v1/guardrails/spending/record
- POST /api/v1/guardrails/spending/reset

Admins may name another user (`user_id`); everyone else acts on their own account.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from aiplane.api.auth import current_principal
from aiplane.commerce import billing, guardrails, quota, views
from aiplane.commerce.scope import subject_of
from aiplane.commerce.windows import to_cents
from aiplane.data.pagination import parse_limit
from aiplane.errors import ForbiddenError, ValidationError

router = APIRouter()


class PaymentPreference(BaseModel):
    type: str | None = None
    card_token: str | None = None


class PaymentRequest(BaseModel):
    amount: float | None = None
    currency: str | None = None
    provider: str | None = None
    payment_preference: PaymentPreference | None = None
    user_id: str | None = None  # beyond the contract: the account an admin credits (default: their own)


class RecordRequest(BaseModel):
    amount: float | None = None
    user_id: str | None = None


class CheckRequest(BaseModel):
    estimated_cost: float | None = None
    user_id: str | None = None


class ResetRequest(BaseModel):
    window_name: str | None = None
    user_id: str | None = None


@router.post("/api/v1/billing/payment", status_code=201)
def create_payment(
    body: PaymentRequest,
    request: Request,
    x_billing: str | None = Header(default=None),
    x_preferred_payment: str | None = Header(default=None),
    idempotency_key: str | None = Header(default=None),
) -> dict[str, Any]:
    account = billing.payment_account(current_principal(request), body.user_id)
    preference = body.payment_preference.type if body.payment_preference else None
    payment = billing.validate_payment(
        body.amount, body.currency, body.provider or x_billing, preference or x_preferred_payment
    )
    record = billing.create_payment(account, payment, idempotency_key)
    return {"transaction": views.transaction_view(record)}


@router.get("/api/v1/billing/transactions")
def list_transactions(
    request: Request, limit: str | None = None, cursor: str | None = None, user_id: str | None = None
) -> dict[str, Any]:
    principal = current_principal(request)
    # An admin without user_id sees every user's transactions.
    owner = None if principal.is_admin and not user_id else subject_of(principal, user_id)
    records = billing.list_transactions(owner, parse_limit(limit), cursor)
    return {"transactions": [views.transaction_view(record) for record in records], "count": len(records)}


@router.get("/api/v1/guardrails/spending")
def get_spending(request: Request, window: str | None = None, user_id: str | None = None) -> dict[str, Any]:
    subject = subject_of(current_principal(request), user_id)
    return views.spending_view(guardrails.shown_window(window), guardrails.spending(subject))


@router.post("/api/v1/guardrails/spending/record")
def record_spending(body: RecordRequest, request: Request) -> dict[str, Any]:
    user_id = subject_of(current_principal(request), body.user_id)
    new_total = guardrails.record(user_id, to_cents(body.amount, param="amount"))
    return {"message": "Spending recorded successfully", "new_total": new_total / 100}


@router.post("/api/v1/guardrails/spending/check")
def check_spending(body: CheckRequest, request: Request) -> dict[str, Any]:
    user_id = subject_of(current_principal(request), body.user_id)
    return guardrails.check(user_id, to_cents(body.estimated_cost, param="estimated_cost", allow_zero=True))


@router.post("/api/v1/guardrails/spending/reset")
def reset_spending(body: ResetRequest, request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    if not body.window_name:
        raise ValidationError("window_name is required", param="window_name")
    if not principal.is_admin:
        raise ForbiddenError("only an admin may reset spending counters")
    guardrails.reset(subject_of(principal, body.user_id), body.window_name)
    return {"message": "Spending reset successfully"}


@router.get("/api/v1/quota")
def get_quota(request: Request, user_id: str | None = None) -> dict[str, Any]:
    subject = subject_of(current_principal(request), user_id)
    return views.quota_view(subject, quota.usage(subject))
