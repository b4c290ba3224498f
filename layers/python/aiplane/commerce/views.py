"""How transactions, models, uploads, quota, model formats and spending answer over HTTP, to agents and in
the account export; kept out of the domain modules so they hold only reads, writes and rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiplane.commerce.formats import FORMATS, ModelFormat
from aiplane.commerce.quota import MAX_FILE_BYTES, STORAGE_LIMIT_BYTES, UPLOAD_LIMITS, QuotaUsage
from aiplane.commerce.records import MODEL_FAILED, ModelRecord, TransactionRecord
from aiplane.commerce.windows import DAILY, HOURLY, from_cents

if TYPE_CHECKING:  # guardrails shapes its refusals here: a runtime import would be a cycle
    from aiplane.commerce.guardrails import WindowSpend


def transaction_view(record: TransactionRecord) -> dict[str, Any]:
    return {
        "id": record.transaction_id,
        "amount": from_cents(record.amount_cents),
        "currency": record.currency,
        "status": record.status,
        "created_at": record.created_at,
    }


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return round(sorted_values[rank], 1)


def _averages(record: ModelRecord) -> tuple[float, float]:
    total = int(record.total_requests)
    if not total:
        return 0.0, 0.0
    return round(float(record.latency_total_ms) / total, 1), round(int(record.error_count) / total, 4)


def metrics_view(record: ModelRecord, latencies: list[float]) -> dict[str, Any]:
    """The model's counters and percentiles of `latencies` (sorted)."""
    average, error_rate = _averages(record)
    return {
        "model_id": record.model_id,
        "name": record.name,
        "total_requests": int(record.total_requests),
        "average_latency": average,
        "p50_latency": _percentile(latencies, 0.50),
        "p95_latency": _percentile(latencies, 0.95),
        "p99_latency": _percentile(latencies, 0.99),
        "error_rate": error_rate,
        "status": record.status,
        "replicas": int(record.replicas),
    }


def model_summary(record: ModelRecord) -> dict[str, Any]:
    return {
        "id": record.model_id,
        "name": record.name,
        "format": record.format,
        "status": record.status,
        "created_at": record.created_at,
    }


def model_detail(record: ModelRecord) -> dict[str, Any]:
    average, error_rate = _averages(record)
    return {
        "id": record.model_id,
        "name": record.name,
        "format": record.format,
        "version": record.version,
        "framework": record.framework,
        "status": record.status,
        "replicas": int(record.replicas),
        "total_requests": int(record.total_requests),
        "average_latency": average,
        "error_rate": error_rate,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        **({"error": record.failure_reason} if record.status == MODEL_FAILED and record.failure_reason else {}),
    }


def upload_view(record: ModelRecord) -> dict[str, Any]:
    return {
        "model_id": record.model_id,
        "name": record.name,
        "format": record.format,
        "endpoint": f"/api/v1/models/{record.model_id}/predict",
        "status": record.status,
        "message": "Model uploaded successfully and loading",
    }


def pending_upload_view(record: ModelRecord, upload: dict[str, Any]) -> dict[str, Any]:
    """The contract's upload answer for a presigned upload: `status: uploading`, plus `upload` and where to complete it."""
    return {
        **upload_view(record),
        "status": "uploading",
        "message": "POST the artifact to upload.url with upload.fields, then POST complete",
        "upload": upload,
        "complete": f"/api/v1/models/{record.model_id}/complete",
    }


def quota_view(user_id: str, usage: QuotaUsage) -> dict[str, object]:
    return {
        "user_id": user_id,
        "storage": {
            "used_bytes": usage.used_bytes,
            "limit_bytes": STORAGE_LIMIT_BYTES,
            "used_pct": round(100 * usage.used_bytes / STORAGE_LIMIT_BYTES, 1),
        },
        "file_size": {"max_bytes": MAX_FILE_BYTES},
        "rate_limits": {
            "uploads_last_hour": usage.uploads[HOURLY],
            "hourly_limit": UPLOAD_LIMITS[HOURLY],
            "uploads_last_day": usage.uploads[DAILY],
            "daily_limit": UPLOAD_LIMITS[DAILY],
        },
    }


def format_view(model_format: ModelFormat) -> dict[str, object]:
    return {
        "format": model_format.format,
        "extensions": list(model_format.extensions),
        "framework": model_format.framework,
        "description": model_format.description,
    }


def formats_view() -> dict[str, object]:
    return {"formats": [format_view(model_format) for model_format in FORMATS], "count": len(FORMATS)}


def violation_view(window_name: str, spent_cents: int, limit_cents: int) -> dict[str, object]:
    return {"window": window_name, "spent": from_cents(spent_cents), "limit": from_cents(limit_cents)}


def spending_view(window_name: str, windows: dict[str, WindowSpend]) -> dict[str, object]:
    shown = windows[window_name]
    return {
        "window_spent": from_cents(shown.spent_cents),
        "window_limit": from_cents(shown.limit_cents),
        "window_name": window_name,
        "percentage_used": round(100 * shown.spent_cents / shown.limit_cents, 2),
        # Windows whose limit is reached: any further spend in them is refused.
        "violations": [
            violation_view(w.window.name, w.spent_cents, w.limit_cents)
            for w in windows.values()
            if w.spent_cents >= w.limit_cents
        ],
    }


def spending_export_view(windows: dict[str, WindowSpend]) -> dict[str, object]:
    """Every window's spend and limit, for the account export."""
    return {
        name: {
            "spent": from_cents(w.spent_cents),
            "limit": from_cents(w.limit_cents),
            "window_start": w.window.start.isoformat(),
        }
        for name, w in windows.items()
    }
