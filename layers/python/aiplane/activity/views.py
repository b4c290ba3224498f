"""Reading activity: tracked requests (see tracker.py), chain runs (their captured state) and
alerts (server-side failures of tracked requests plus failed authentications from the identity
audit trail)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiplane.activity.models import (
    ALERTS,
    OPERATIONS,
    REQUESTS,
    ActivityRecord,
    AlertRecord,
    OperationRecord,
    operation_key,
)
from aiplane.chains import store as chains
from aiplane.data.models import get_or_none
from aiplane.data.pagination import parse_limit
from aiplane.errors import NotFoundError
from aiplane.identity.audit import FAILURE, day_key
from aiplane.identity.models import AuthEventRecord

DEFAULT_ALERT_LIMIT = 99  # the contract's default for /activity/alerts
AUTH_ALERT_DAYS = 7  # auth failures are read from this many daily audit partitions


def _live(record: Any) -> bool:
    return record.expires_at_epoch is None or record.expires_at_epoch > time.time()


def request_view(record: ActivityRecord) -> dict[str, Any]:
    return {
        "id": record.request_id,
        "operation": record.operation,
        "subject": record.subject,
        "principalId": record.principal_id,
        "method": record.method,
        "path": record.path,
        "status": int(record.status),
        "error": record.error,
        "startedAt": record.started_at,
        "endedAt": record.ended_at,
        "durationMs": float(record.duration_ms),
        "metadata": record.metadata,
    }


def list_requests(limit: str | None) -> list[dict[str, Any]]:
    """Newest first."""
    page_size = parse_limit(limit)
    records = ActivityRecord.by_start.query(REQUESTS, scan_index_forward=False, limit=page_size)
    return [request_view(record) for record in records if _live(record)]


def _activity(request_id: str) -> ActivityRecord | None:
    record = get_or_none(ActivityRecord, f"ACTIVITY#{request_id}", "META")
    return record if record is not None and _live(record) else None


def get_request(request_id: str) -> dict[str, Any]:
    record = _activity(request_id)
    if record is None:
        raise NotFoundError(f"activity request {request_id} not found")
    return request_view(record)


def execution_state(request_id: str) -> list[dict[str, Any]]:
    """The captured state units of a chain run; a tracked request carries no execution state."""
    if chains.chain_run_exists(request_id):
        return chains.captured_units(request_id)
    if _activity(request_id) is not None:
        return []
    raise NotFoundError(f"activity request {request_id} not found")


def stateful_requests(limit: str | None) -> list[dict[str, Any]]:
    return chains.recent_runs(parse_limit(limit))


def operations() -> list[dict[str, Any]]:
    return [
        {"operation": record.operation, "subject": record.subject, "count": int(record.times), "lastAt": record.last_at}
        for record in OperationRecord.query(OPERATIONS)
    ]


def requests_by_operation(operation: str, subject: str, limit: str | None) -> list[dict[str, Any]]:
    page_size = parse_limit(limit)
    records = ActivityRecord.by_operation.query(
        operation_key(operation, subject), scan_index_forward=False, limit=page_size
    )
    return [request_view(record) for record in records if _live(record)]


def alerts(limit: str | None) -> list[dict[str, Any]]:
    """Newest first: failed tracked requests and failed authentications."""
    page_size = parse_limit(limit, default=DEFAULT_ALERT_LIMIT)
    found = [
        {
            "id": record.sk,
            "source": "request",
            "message": record.message,
            "requestId": record.request_id,
            "metadata": record.metadata,
            "timestamp": record.at,
        }
        for record in AlertRecord.query(ALERTS, scan_index_forward=False, limit=page_size, page_size=page_size)
        if _live(record)
    ]
    today, failures = datetime.now(UTC), 0
    for days_ago in range(AUTH_ALERT_DAYS):  # newest day first, until a page of failures is found
        remaining = page_size - failures
        if remaining <= 0:
            break
        for event in AuthEventRecord.by_day.query(
            day_key(FAILURE, today - timedelta(days=days_ago)),
            scan_index_forward=False,
            limit=remaining,
            page_size=remaining,
        ):
            failures += 1
            found.append(
                {
                    "id": event.gsi2sk,
                    "source": "auth",
                    "message": f"{event.action} failed: {event.reason or 'unknown reason'}",
                    "requestId": None,
                    "timestamp": event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "metadata": {
                        "family": event.family,
                        "userId": event.user_id,
                        "credential": event.credential,
                        "keyPrefix": event.key_prefix,
                        "sourceIp": event.source_ip,
                    },
                }
            )
    found.sort(key=lambda alert: alert["timestamp"], reverse=True)
    return found[:page_size]
