"""How stored events, raw events, functions and triggers answer over HTTP (the domain bus carries
the same event shape); kept out of the store modules so they hold only reads, writes and rules."""

from __future__ import annotations

import json
from typing import Any

from aiplane.events.models import EventRecord, FunctionRecord, RawEventRecord, TriggerRecord


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
