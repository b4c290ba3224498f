"""Model storage quota: stored bytes per user, the largest file, and uploads per hour and day.

Usage and upload counts change only inside the upload and delete transactions (`serving`), as
conditional `ADD`s, so two concurrent uploads can never together pass a limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiplane.commerce.records import CounterRecord, UsageRecord, quota_key
from aiplane.commerce.windows import DAILY, HOURLY, Window, current_window
from aiplane.data.models import get_or_none
from aiplane.errors import PayloadTooLargeError, PaymentRequiredError, RateLimitedError

# The contract's example figures: 100 GiB stored, 10 GiB per file, 50 uploads an hour, 500 a day.
STORAGE_LIMIT_BYTES = 100 * 1024**3
MAX_FILE_BYTES = 10 * 1024**3
UPLOAD_LIMITS = {HOURLY: 50, DAILY: 500}
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


def usage_record(user_id: str) -> UsageRecord:
    return UsageRecord(quota_key(user_id), "USAGE")


def upload_counter(user_id: str, window: Window) -> CounterRecord:
    return CounterRecord(quota_key(user_id), f"UPLOADS#{window.sort_key}")


def used_bytes(user_id: str) -> int:
    usage = get_or_none(UsageRecord, quota_key(user_id), "USAGE", consistent_read=True)
    return int(usage.used_bytes) if usage else 0


def uploads_in(user_id: str, window_name: str) -> int:
    window = current_window(window_name)
    counter = get_or_none(CounterRecord, quota_key(user_id), f"UPLOADS#{window.sort_key}", consistent_read=True)
    return int(counter.value) if counter else 0


@dataclass(frozen=True)
class QuotaUsage:
    used_bytes: int
    uploads: dict[str, int]  # per window name, in its current window


def usage(user_id: str) -> QuotaUsage:
    """What the user has stored and uploaded now, against the quota."""
    return QuotaUsage(used_bytes(user_id), {name: uploads_in(user_id, name) for name in UPLOAD_LIMITS})


def check_file_size(size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise PayloadTooLargeError(
            f"the file is larger than the {MAX_FILE_BYTES} bytes allowed",
            code=QUOTA_EXCEEDED,
            details={"size_bytes": size, "max_bytes": MAX_FILE_BYTES},
        )


def storage_exceeded(user_id: str, size: int) -> PaymentRequiredError:
    used = used_bytes(user_id)
    return PaymentRequiredError(
        "the upload would exceed your storage quota",
        code=QUOTA_EXCEEDED,
        details={"used_bytes": used, "size_bytes": size, "limit_bytes": STORAGE_LIMIT_BYTES},
    )


def uploads_exceeded(window_name: str) -> RateLimitedError:
    window = current_window(window_name)
    retry_after = max(1, int((window.end - datetime.now(UTC)).total_seconds()))
    return RateLimitedError(
        f"{window_name} upload limit of {UPLOAD_LIMITS[window_name]} reached",
        code=QUOTA_EXCEEDED,
        headers={"Retry-After": str(retry_after)},
        details={"window": window_name, "limit": UPLOAD_LIMITS[window_name], "resets_at": window.end.isoformat()},
    )


def precheck_upload(user_id: str, size: int) -> None:
    """Fail fast before the artifact travels to S3; the upload transaction re-checks atomically."""
    check_file_size(size)
    if used_bytes(user_id) + size > STORAGE_LIMIT_BYTES:
        raise storage_exceeded(user_id, size)
    for name, limit in UPLOAD_LIMITS.items():
        if uploads_in(user_id, name) >= limit:
            raise uploads_exceeded(name)
