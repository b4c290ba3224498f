"""The mlworker audit log: an `aiplane.audit_chain` chain in the mlworker table.

Every event's hash covers its content, its sequence number and its predecessor's hash (SHA-256
over canonical JSON); the chain is sharded so appends do not serialise on one head, and anchored
in signed digests (on the audit-digests schedule and on every chain-root call) so that even a
writer of the table cannot rewrite, remove or truncate events before the last digest unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiplane import audit_chain
from aiplane.audit_chain import Chain, sequence_key
from aiplane.clock import now_iso, parse_iso
from aiplane.data.pagination import Page, one_request
from aiplane.errors import ValidationError
from aiplane.mlworker.models import AUDIT_PARTITION, AUDIT_TIME_PARTITION, AuditEventRecord, AuditHeadRecord

EVENT_TYPES = (
    "job_queued",
    "job_started",
    "job_completed",
    "file_access",
    "auth_attempt",
    "plugin_configured",
    "scheduler_drain",
    "audit_verified",
)
SHARDS = 8
MAX_OFFSET = 10_000  # an offset costs the items it skips; cursors page on at the cost of a page


@dataclass(frozen=True)
class Actor:
    """Who made a call and from where (recorded with the event)."""

    user_id: str | None
    ip_address: str | None = None


CHAIN = Chain(
    name="mlworker",
    partition_prefix=f"{AUDIT_PARTITION}#",
    shards=SHARDS,
    entry=AuditEventRecord,
    head=AuditHeadRecord,
    hashed_fields=AuditEventRecord.chained_fields,
)


def event_hash(record: AuditEventRecord) -> str:
    return audit_chain.entry_hash(CHAIN, record)


def append_event(
    event_type: str,
    actor: Actor,
    *,
    resource: str | None = None,
    action: str | None = None,
    success: bool = True,
    error: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> AuditEventRecord:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown audit event type {event_type}")

    def build(sequence: int) -> AuditEventRecord:
        moment = now_iso()
        return AuditEventRecord(
            gsi1sk=sequence_key(sequence),
            gsi2pk=AUDIT_TIME_PARTITION,
            gsi2sk=time_key(moment, sequence),
            timestamp=moment,
            event_type=event_type,
            user_id=actor.user_id,
            resource=resource,
            action=action,
            success=success,
            ip_address=actor.ip_address,
            error=error,
            metadata=metadata or {},
        )

    return audit_chain.append(CHAIN, build)


def time_key(timestamp: str, sequence: int) -> str:
    return f"{timestamp}#{sequence_key(sequence)}"


def _events(**query: Any):
    """Every event in sequence order (gsi1; eventually consistent, which listings and streams allow)."""
    return AuditEventRecord.in_sequence.query(AUDIT_PARTITION, **query)


def _parse_time(raw: str | None, param: str) -> str | None:
    if raw is None or raw == "":
        return None
    try:
        moment = parse_iso(raw)
    except ValueError:
        raise ValidationError(f"{param} must be an RFC 3339 date-time", param=param) from None
    if moment.tzinfo is None:
        raise ValidationError(f"{param} must carry a time zone", param=param)
    return now_iso(moment)


def query_events(
    *,
    start: str | None,
    end: str | None,
    event_type: str | None,
    user_id: str | None,
    limit: int,
    offset: int,
    cursor: str | None = None,
) -> tuple[Page[AuditEventRecord], int | None]:
    """One page of events in time order (then sequence) from the time index: the range is a key
    condition, the type and user filter what one request of `offset + limit` items read (so a page
    may hold fewer matches, with a cursor to read on). `total` counts every event in the log (from
    the shard heads), None when filters apply: counting matches would read them all."""
    if event_type is not None and event_type not in EVENT_TYPES:
        raise ValidationError(f"event_type must be one of {', '.join(EVENT_TYPES)}", param="event_type")
    if offset > MAX_OFFSET:
        raise ValidationError(f"offset must be at most {MAX_OFFSET}; page on with cursor", param="offset")
    start_at, end_at = _parse_time(start, "from"), _parse_time(end, "to")
    # "~" sorts after "#SEQ#...": an event stamped exactly `to` is in the range.
    span: Any = None
    if start_at and end_at:
        span = AuditEventRecord.gsi2sk.between(start_at, end_at + "~")
    elif start_at:
        span = AuditEventRecord.gsi2sk >= start_at
    elif end_at:
        span = AuditEventRecord.gsi2sk <= end_at + "~"
    condition = None
    for clause in (
        AuditEventRecord.event_type == event_type if event_type else None,
        AuditEventRecord.user_id == user_id if user_id else None,
    ):
        if clause is not None:
            condition = clause if condition is None else condition & clause
    page = one_request(
        AuditEventRecord,
        AUDIT_TIME_PARTITION,
        index=AuditEventRecord.in_time,
        limit=offset + limit,
        cursor=cursor,
        range_key_condition=span,
        filter_condition=condition,
    )
    filtered = start_at or end_at or condition is not None
    total = None if filtered else audit_chain.total_appended(CHAIN, audit_chain.heads(CHAIN))
    return Page(page.items[offset:], page.next_cursor), total


def events_after(sequence: int) -> list[AuditEventRecord]:
    """Events newer than `sequence`, in sequence order (the scheduler stream resumes from here)."""
    return list(_events(range_key_condition=AuditEventRecord.gsi1sk > sequence_key(sequence)))


def head_sequence() -> int:
    return audit_chain.newest_sequence(audit_chain.heads(CHAIN))
