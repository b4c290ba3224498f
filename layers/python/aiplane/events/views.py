"""How stored events, raw events, functions, triggers and jobs answer over HTTP (the domain bus carries
the same event shape); kept out of the store modules so they hold only reads, writes and rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiplane.clock import rfc3339
from aiplane.events.models import LEASED, EventRecord, FunctionRecord, JobRecord, RawEventRecord, TriggerRecord


def event_view(record: EventRecord) -> dict[str, Any]:
    return {
        "id": record.event_id,
        "nid": int(record.nid),
        "created_at": record.created_at,
        "event_type": record.event_type,
        "event_source": record.event_source,
        "aggregate_id": record.aggregate_id,
        "aggregate_type": record.aggregate_type,
        "version": int(record.version),
        "data": json.loads(record.data),
        "metadata": json.loads(record.metadata),
    }


def raw_event_view(record: RawEventRecord) -> dict[str, Any]:
    return {
        "id": record.raw_id,
        "nid": int(record.nid),
        "received_at": record.received_at,
        "path": record.path,
        "headers": json.loads(record.headers),
        "payload": json.loads(record.payload),
    }


def function_view(record: FunctionRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "description": record.description,
        "scriptType": record.script_type,
        "script": record.script,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
    }


def trigger_view(record: TriggerRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "description": record.description,
        "listenFor": json.loads(record.listen_for),
        "type": record.trigger_type,
        "function": record.function,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
    }


def _iso(epoch: float) -> str:
    return rfc3339(datetime.fromtimestamp(epoch, UTC))


def job_view(record: JobRecord) -> dict[str, Any]:
    view = {
        "id": record.job_id,
        "taskType": record.task_type,
        "operation": record.operation,
        "subject": record.subject,
        "entityId": record.entity_id,
        "entityType": record.entity_type,
        "payload": json.loads(record.payload),
        "scheduledFor": int(record.scheduled_for),
        "validUntil": int(record.valid_until),
        "retryCount": int(record.retry_count),
        "createdAt": record.created_at,
    }
    if record.status == LEASED:
        view |= {"leaserId": record.leaser_id, "leaseExpiration": _iso(record.lease_expires_epoch)}
    return view
