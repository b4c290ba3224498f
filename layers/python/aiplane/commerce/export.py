"""The commerce sections of the account export (GET /api/v1/user/export)."""

from __future__ import annotations

from typing import Any

from aiplane.commerce import billing, guardrails, quota
from aiplane.identity.export import register_export_section


def _transactions(user_id: str) -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = []
    while True:
        page = billing.list_transactions(user_id, limit=1000, cursor=views[-1]["created_at"] if views else None)
        views.extend(billing.transaction_view(record) for record in page)
        if len(page) < 1000:
            return views


def _usage_quota(user_id: str) -> dict[str, Any]:
    return {**quota.quota_view(user_id), "spending": guardrails.spending_export(user_id)}


register_export_section("transactions", _transactions)
register_export_section("credits", billing.credits_of)
register_export_section("usage_quota", _usage_quota)
