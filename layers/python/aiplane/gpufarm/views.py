"""How GPU contracts and preferences answer over HTTP and in the account export; kept out of the
records and lifecycle modules so they hold only reads, writes and rules (and the export, which
shapes contracts, imports nothing of their lifecycle)."""

from __future__ import annotations

from typing import Any

from aiplane.clock import rfc3339_seconds
from aiplane.commerce.windows import from_cents
from aiplane.gpufarm.contract_states import settled_cost_cents
from aiplane.gpufarm.records import DEFAULT_PREFERENCES, GpuContractRecord, GpuPreferencesRecord


def contract_view(record: GpuContractRecord) -> dict[str, Any]:
    return {
        "contract_id": record.contract_id,
        "provider": record.provider,
        "instance_id": record.offer_id,
        "status": record.status,
        "created_at": rfc3339_seconds(record.created_at),
    }


def usage_view(record: GpuContractRecord) -> dict[str, Any]:
    """One contract in the account export's `gpu_usage`: what ran, when, and what it cost so far."""
    return {
        "contract_id": record.contract_id,
        "provider": record.provider,
        "instance_id": record.offer_id,
        "instance_type": record.instance_type,
        "status": record.status,
        "market": record.market,
        "gpu_count": int(record.gpu_count),
        "created_at": rfc3339_seconds(record.created_at),
        "launched_at": rfc3339_seconds(record.launched_at) if record.launched_at else None,
        "ends_at": rfc3339_seconds(record.ends_at) if record.ends_at else None,
        "price_per_hour": float(record.price_per_hour) if record.price_per_hour is not None else None,
        "cost": from_cents(settled_cost_cents(record)),
    }


def preferences_view(record: GpuPreferencesRecord | None, user_id: str) -> dict[str, Any]:
    """A user's saved preferences, or the defaults (`is_default`) when they saved none."""
    if record is None:
        return {"id": None, "user_id": user_id, **DEFAULT_PREFERENCES, "is_default": True, "created_at": None}
    return {
        "id": record.preferences_id,
        "user_id": record.user_id,
        "preferred_vendors": list(record.preferred_vendors),
        "preferred_tiers": list(record.preferred_tiers),
        "min_vram": record.min_vram,
        "max_price_per_hour": record.max_price_per_hour,
        "priority": record.priority,
        "is_default": False,
        "created_at": rfc3339_seconds(record.created_at),
    }
