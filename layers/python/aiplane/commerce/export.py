"""The commerce sections of the account export (GET /api/v1/user/export)."""

from __future__ import annotations

from typing import Any

from aiplane.commerce import billing, guardrails, quota
from aiplane.commerce.views import quota_view, spending_export_view, transaction_view
from aiplane.gpufarm import contract_states
from aiplane.gpufarm.views import usage_view
from aiplane.identity.export import register_export_section

PAGE = 1000


def _transactions(user_id: str) -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = []
    while True:
        page = billing.list_transactions(user_id, limit=PAGE, cursor=views[-1]["created_at"] if views else None)
        views.extend(transaction_view(record) for record in page)
        if len(page) < PAGE:
            return views


def _gpu_usage(user_id: str) -> list[dict[str, Any]]:
    """The user's GPU contracts, page by page through their own contracts key (nobody else's are read)."""
    views: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = contract_states.user_contracts(user_id, limit=PAGE, after=after)
        views.extend(usage_view(record) for record in page)
        if len(page) < PAGE:
            return views
        after = page[-1].gsi1sk


def _usage_quota(user_id: str) -> dict[str, Any]:
    return {**quota_view(user_id, quota.usage(user_id)), "spending": spending_export_view(guardrails.spending(user_id))}


register_export_section("transactions", _transactions)
register_export_section("credits", billing.credits_of)
register_export_section("gpu_usage", _gpu_usage)
register_export_section("usage_quota", _usage_quota)
