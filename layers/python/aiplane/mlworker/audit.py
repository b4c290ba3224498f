"""The tamper-evident audit log: a SHA-256 hash chain over canonical JSON.

Every event's hash covers its content, its sequence number and the previous event's hash, so
changing or removing any stored event breaks every link after it. Appends race on the chain
head: the event is written together with a conditional update of the head item (sequence must
still be the one read), so two concurrent appends can never both extend the same head; the
loser re-reads the head and tries again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from aiplane.errors import ConflictError, ValidationError
from aiplane.mlworker.common import connection, now_iso, parse_iso, without_none
from aiplane.mlworker.models import (
    AUDIT_HEAD,
    AUDIT_PARTITION,
    SEQUENCE_PREFIX,
    AuditEventRecord,
    AuditHeadRecord,
    audit_sequence_key,
)

EVENT_TYPES = (
    "job_queued", "job_started", "job_completed", "file_access", "auth_attempt",
    "plugin_configured", "scheduler_drain", "audit_verified",
)
GENESIS_HASH = "0" * 64
APPEND_ATTEMPTS = 50


@dataclass(frozen=True)
class Actor:
    """Who made a call and from where (recorded with the event)."""

    user_id: str | None
    ip_address: str | None = None


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _hashed_fields(record: AuditEventRecord) -> dict[str, Any]:
    return {
        "sequence_num": int(record.sequence_num), "timestamp": record.timestamp, "event_type": record.event_type,
        "user_id": record.user_id, "resource": record.resource, "action": record.action,
        "success": bool(record.success), "ip_address": record.ip_address, "error": record.error,
        "metadata": record.metadata or {}, "prev_hash": record.prev_hash,
    }


def event_hash(record: AuditEventRecord) -> str:
    return hashlib.sha256(canonical_json(_hashed_fields(record))).hexdigest()


def _head() -> AuditHeadRecord | None:
    try:
        return AuditHeadRecord.get(AUDIT_PARTITION, AUDIT_HEAD, consistent_read=True)
    except DoesNotExist:
        return None


def append_event(
    event_type: str, actor: Actor, *, resource: str | None = None, action: str | None = None,
    success: bool = True, error: str | None = None, metadata: dict[str, Any] | None = None,
) -> AuditEventRecord:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown audit event type {event_type}")
    for _ in range(APPEND_ATTEMPTS):
        head = _head()
        sequence = int(head.sequence_num) + 1 if head else 1
        record = AuditEventRecord(
            AUDIT_PARTITION, audit_sequence_key(sequence), sequence_num=sequence, timestamp=now_iso(),
            event_type=event_type, user_id=actor.user_id, resource=resource, action=action, success=success,
            ip_address=actor.ip_address, error=error, metadata=metadata or {},
            prev_hash=head.event_hash if head else GENESIS_HASH, event_hash="",
        )
        record.event_hash = event_hash(record)
        new_head = AuditHeadRecord(AUDIT_PARTITION, AUDIT_HEAD, sequence_num=sequence,
                                   event_hash=record.event_hash, timestamp=record.timestamp)
        head_unchanged = (
            AuditHeadRecord.sequence_num == int(head.sequence_num) if head else AuditHeadRecord.pk.does_not_exist()
        )
        try:
            with TransactWrite(connection=connection()) as transaction:
                transaction.save(record, condition=AuditEventRecord.pk.does_not_exist())
                transaction.save(new_head, condition=head_unchanged)
            return record
        except TransactWriteError:
            continue  # another append extended the chain first: build on the new head
    raise ConflictError("the audit chain is too busy; try again")


def _events(**query: Any):
    return AuditEventRecord.query(
        AUDIT_PARTITION, AuditEventRecord.sk.startswith(SEQUENCE_PREFIX), consistent_read=True, **query,
    )


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
    *, start: str | None, end: str | None, event_type: str | None, user_id: str | None, limit: int, offset: int,
) -> tuple[list[AuditEventRecord], int]:
    """Events in chain order matching every given filter, and how many match in all."""
    if event_type is not None and event_type not in EVENT_TYPES:
        raise ValidationError(f"event_type must be one of {', '.join(EVENT_TYPES)}", param="event_type")
    start_at, end_at = _parse_time(start, "from"), _parse_time(end, "to")
    condition = None
    for clause in (
        AuditEventRecord.timestamp >= start_at if start_at else None,
        AuditEventRecord.timestamp <= end_at if end_at else None,
        AuditEventRecord.event_type == event_type if event_type else None,
        AuditEventRecord.user_id == user_id if user_id else None,
    ):
        if clause is not None:
            condition = clause if condition is None else condition & clause
    matching = list(_events(filter_condition=condition))
    return matching[offset:offset + limit], len(matching)


def event_body(record: AuditEventRecord) -> dict[str, Any]:
    return without_none({
        "timestamp": record.timestamp, "event_type": record.event_type, "user_id": record.user_id,
        "resource": record.resource, "action": record.action, "success": bool(record.success),
        "ip_address": record.ip_address, "error": record.error, "prev_hash": record.prev_hash,
        "event_hash": record.event_hash, "sequence_num": int(record.sequence_num), "metadata": record.metadata or {},
    })


def verify_chain(actor: Actor) -> dict[str, Any]:
    """Recompute every hash and link; report the first event that does not hold.

    The verification itself is then recorded (event `audit_verified`), after the check.
    """
    expected_prev, expected_sequence, first_tampered, total = GENESIS_HASH, 1, None, 0
    for record in _events():
        total += 1
        if first_tampered is not None:
            continue
        sequence = int(record.sequence_num)
        if (sequence != expected_sequence or record.sk != audit_sequence_key(sequence)
                or record.prev_hash != expected_prev or event_hash(record) != record.event_hash):
            first_tampered = expected_sequence if sequence > expected_sequence else sequence
            continue
        expected_prev, expected_sequence = record.event_hash, sequence + 1
    head = _head()
    if first_tampered is None and head is not None and (
        int(head.sequence_num) != expected_sequence - 1 or head.event_hash != expected_prev
    ):
        # The newest events were removed (or the head was rewritten): the break is past the last intact event.
        first_tampered = expected_sequence
    result = {
        "valid": first_tampered is None, "total_events": total, "first_tampered": first_tampered,
        "chain_root_hash": head.event_hash if head else GENESIS_HASH, "verified_at": now_iso(),
    }
    append_event("audit_verified", actor, resource="audit/chain", action="verify", success=result["valid"],
                 metadata={"total_events": total, "first_tampered": first_tampered})
    return without_none(result)


def chain_root() -> dict[str, Any]:
    head = _head()
    if head is None:
        return {"root_hash": GENESIS_HASH, "timestamp": now_iso(), "total_events": 0}
    return {"root_hash": head.event_hash, "timestamp": head.timestamp, "total_events": int(head.sequence_num)}


def events_after(sequence: int) -> list[AuditEventRecord]:
    """Events newer than `sequence`, oldest first (the scheduler stream resumes from here)."""
    return list(AuditEventRecord.query(
        AUDIT_PARTITION, AuditEventRecord.sk.between(audit_sequence_key(sequence + 1), audit_sequence_key(10**12 - 1)),
        consistent_read=True,
    ))


def head_sequence() -> int:
    head = _head()
    return int(head.sequence_num) if head else 0

