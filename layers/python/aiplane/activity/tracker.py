"""Recording request activity: a router dependency that wraps each state-changing request (and
each search) of the runtime groups that opt in, without touching the family app factory:

    router = APIRouter(dependencies=[Depends(tracked("files")), Depends(resource_permission("files"))])

One PutItem per request and one counter update per operation; a 5xx also writes an alert.
Recording never fails the request: a failed write is logged and the request goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from aiplane.activity.models import ALERTS, OPERATIONS, ActivityRecord, AlertRecord, OperationRecord, operation_key
from aiplane.api.auth import current_principal
from aiplane.clock import now_iso
from aiplane.observability import correlation_id, logger

RETENTION = timedelta(days=30)
UNTRACKED_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def tracked(subject: str, *, reads: bool = False) -> Callable[[Request], Iterator[None]]:
    """A dependency recording the request as operation <route name> on `subject`; reads only when
    `reads` (searches are worth recording, plain metadata reads are not)."""

    def track(request: Request) -> Iterator[None]:
        if request.method in UNTRACKED_READS and not reads:
            yield
            return
        started, started_at = time.monotonic(), now_iso()
        route = request.scope.get("route")
        default_status = getattr(route, "status_code", None) or 200
        try:
            yield
        except Exception as error:
            status = 400 if isinstance(error, RequestValidationError) else getattr(error, "status", 500)
            _record(request, subject, started, started_at, status, str(error) or type(error).__name__)
            raise
        _record(request, subject, started, started_at, default_status, None)

    return track


def _record(request: Request, subject: str, started: float, started_at: str, status: int, error: str | None) -> None:
    route = request.scope.get("route")
    operation = getattr(route, "name", None) or request.method.lower()
    request_id = correlation_id(request.scope)
    ended_at = now_iso()
    expires = int((datetime.now(UTC) + RETENTION).timestamp())
    try:
        principal_id = current_principal(request).id
    except Exception:  # the request failed before it was authenticated
        principal_id = ""
    try:
        ActivityRecord(
            f"ACTIVITY#{request_id}",
            "META",
            gsi1sk=f"{started_at}#{request_id}",
            gsi2pk=operation_key(operation, subject),
            gsi2sk=f"{started_at}#{request_id}",
            request_id=request_id,
            operation=operation,
            subject=subject,
            principal_id=principal_id,
            method=request.method,
            path=request.url.path,
            status=status,
            error=error,
            started_at=started_at,
            ended_at=ended_at,
            duration_ms=round((time.monotonic() - started) * 1000, 3),
            metadata={"pathParams": dict(request.path_params)},
            expires_at_epoch=expires,
        ).save()
        OperationRecord(OPERATIONS, f"{operation}#{subject}").update(
            actions=[
                OperationRecord.operation.set(operation),
                OperationRecord.subject.set(subject),
                OperationRecord.times.add(1),
                OperationRecord.last_at.set(ended_at),
            ]
        )
        if status >= 500:
            AlertRecord(
                ALERTS,
                f"{ended_at}#{request_id}",
                request_id=request_id,
                at=ended_at,
                expires_at_epoch=expires,
                message=f"{operation} on {subject} failed: {error}",
                metadata={"status": status, "path": request.url.path},
            ).save()
    except Exception:
        logger.exception("recording request activity failed", extra={"operation": operation, "subject": subject})
