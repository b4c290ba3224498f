"""GPU preferences per user and the scoring that picks a GPU model for them.

A score (0-100) weighs performance against cost by `priority`, then adds bonuses for a
preferred vendor (earlier in the list scores more) and a preferred tier. Hard limits (minimum
VRAM, maximum price, vendor list) decide eligibility; ineligible models are listed with why.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from aiplane.clock import now
from aiplane.data.models import get_or_none
from aiplane.errors import ValidationError
from aiplane.gpufarm import catalog, gpu_models, views
from aiplane.gpufarm.offers import Filters, Offer
from aiplane.gpufarm.records import DEFAULT_PREFERENCES, GpuPreferencesRecord

PRIORITIES = {"performance": 0.8, "balanced": 0.5, "cost": 0.2}  # weight of performance vs cost
VENDOR_BONUS, TIER_BONUS = 10.0, 10.0

EXAMPLES: dict[str, dict[str, Any]] = {
    "cost_optimized": {
        "preferred_vendors": [],
        "preferred_tiers": ["entry", "mid-range"],
        "min_vram": 8,
        "max_price_per_hour": 1.0,
        "priority": "cost",
    },
    "performance_focused": {
        "preferred_vendors": ["NVIDIA"],
        "preferred_tiers": ["high-end"],
        "min_vram": 40,
        "max_price_per_hour": None,
        "priority": "performance",
    },
    "nvidia_only": {
        "preferred_vendors": ["NVIDIA"],
        "preferred_tiers": [],
        "min_vram": 16,
        "max_price_per_hour": 5.0,
        "priority": "balanced",
    },
    "amd_preferred": {
        "preferred_vendors": ["AMD", "NVIDIA"],
        "preferred_tiers": ["high-end", "mid-range"],
        "min_vram": 16,
        "max_price_per_hour": 5.0,
        "priority": "balanced",
    },
}


def validate(preferences: dict[str, Any]) -> dict[str, Any]:
    merged = {
        **DEFAULT_PREFERENCES,
        **{k: v for k, v in preferences.items() if v is not None or k == "max_price_per_hour"},
    }
    if merged["priority"] not in PRIORITIES:
        raise ValidationError(f"priority must be one of {', '.join(PRIORITIES)}", param="priority")
    unknown_tiers = [tier for tier in merged["preferred_tiers"] if tier not in gpu_models.TIERS]
    if unknown_tiers:
        raise ValidationError(
            f"unknown tiers {unknown_tiers}; expected {', '.join(gpu_models.TIERS)}", param="preferred_tiers"
        )
    if merged["min_vram"] < 0:
        raise ValidationError("min_vram must not be negative", param="min_vram")
    if merged["max_price_per_hour"] is not None and merged["max_price_per_hour"] < 0:
        raise ValidationError("max_price_per_hour must not be negative", param="max_price_per_hour")
    return merged


def _find(user_id: str) -> GpuPreferencesRecord | None:
    return get_or_none(GpuPreferencesRecord, f"USER#{user_id}", "GPU_PREFERENCES")


def get_preferences(user_id: str) -> dict[str, Any]:
    return views.preferences_view(_find(user_id), user_id)


def save_preferences(user_id: str, preferences: dict[str, Any]) -> dict[str, Any]:
    merged = validate(preferences)
    current = _find(user_id)  # a second save keeps the id and creation time
    moment = now()
    record = GpuPreferencesRecord(
        f"USER#{user_id}",
        "GPU_PREFERENCES",
        preferences_id=current.preferences_id if current else str(uuid.uuid4()),
        user_id=user_id,
        preferred_vendors=merged["preferred_vendors"],
        preferred_tiers=merged["preferred_tiers"],
        min_vram=merged["min_vram"],
        max_price_per_hour=merged["max_price_per_hour"],
        priority=merged["priority"],
        created_at=current.created_at if current else moment,
        updated_at=moment,
    )
    record.save()
    return views.preferences_view(record, user_id)


def available_gpus(
    vendor: str | None = None, tier: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every GPU model on offer now (all providers), with vendor, VRAM, tier and average price per GPU."""
    offers, errors = catalog.list_offers(catalog.ALL, Filters())
    grouped: dict[str, list[Offer]] = defaultdict(list)
    for offer in offers:
        grouped[offer.gpu_model].append(offer)
    gpus: list[dict[str, Any]] = []
    for name, model_offers in grouped.items():
        vram = max(offer.vram_gb for offer in model_offers)
        known = gpu_models.describe(name, vendor=model_offers[0].gpu_vendor, vram_gb=vram)
        per_gpu = [offer.price_per_hour / max(offer.gpu_count, 1) for offer in model_offers]
        gpus.append(
            {
                "name": name,
                "vendor": known.vendor,
                "vram_gb": vram,
                "tier": known.tier,
                "avg_price_per_hour": round(sum(per_gpu) / len(per_gpu), 4),
                "performance": known.performance,
                "offers": len(model_offers),
            }
        )
    gpus = [
        gpu
        for gpu in gpus
        if (not vendor or gpu["vendor"].lower() == vendor.lower()) and (not tier or gpu["tier"] == tier)
    ]
    gpus.sort(key=lambda gpu: (gpu["vendor"], -gpu["performance"], gpu["name"]))
    return gpus, errors


def score(gpus: list[dict[str, Any]], preferences: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(eligible GPUs with scores, best first; ineligible GPUs with the reason)."""
    vendors = [vendor.lower() for vendor in preferences["preferred_vendors"]]
    max_price = preferences["max_price_per_hour"]
    eligible, excluded = [], []
    for gpu in gpus:
        reason = None
        if vendors and gpu["vendor"].lower() not in vendors:
            reason = f"vendor {gpu['vendor']} not preferred"
        elif gpu["vram_gb"] < preferences["min_vram"]:
            reason = f"{gpu['vram_gb']} GB VRAM is below {preferences['min_vram']} GB"
        elif max_price is not None and gpu["avg_price_per_hour"] > max_price:
            reason = f"{gpu['avg_price_per_hour']}/h is above {max_price}/h"
        if reason:
            excluded.append({**_card(gpu), "reason": reason})
        else:
            eligible.append(gpu)
    if not eligible:
        return [], excluded
    top_performance = max(gpu["performance"] for gpu in eligible) or 1.0
    top_price = max(gpu["avg_price_per_hour"] for gpu in eligible) or 1.0
    performance_weight = PRIORITIES[preferences["priority"]]
    scored = []
    for gpu in eligible:
        performance = gpu["performance"] / top_performance
        cheapness = 1.0 - gpu["avg_price_per_hour"] / top_price if len(eligible) > 1 else 1.0
        value = 80.0 * (performance_weight * performance + (1 - performance_weight) * cheapness)
        if vendors:
            value += VENDOR_BONUS * (len(vendors) - vendors.index(gpu["vendor"].lower())) / len(vendors)
        if gpu["tier"] in preferences["preferred_tiers"]:
            value += TIER_BONUS
        scored.append({**_card(gpu), "score": round(value, 1)})
    scored.sort(key=lambda card: (-card["score"], card["avg_price_per_hour"], card["name"]))
    return scored, excluded


def _card(gpu: dict[str, Any]) -> dict[str, Any]:
    return {key: gpu[key] for key in ("name", "vendor", "vram_gb", "tier", "avg_price_per_hour")}


def preview_selection(user_id: str, overrides: dict[str, Any]) -> dict[str, Any]:
    stored = get_preferences(user_id)
    preferences = validate({**{key: stored[key] for key in DEFAULT_PREFERENCES}, **overrides})
    gpus, errors = available_gpus()
    scored, excluded = score(gpus, preferences)
    return {
        "selected_gpu": scored[0] if scored else None,
        "alternatives": scored[1:],
        "excluded": excluded,
        "preferences": preferences,
        "errors": errors,
    }
