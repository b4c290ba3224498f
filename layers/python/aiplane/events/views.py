"""How stored events and raw events answer over HTTP (and on the domain bus, which carries the
same event shape); kept out of the store modules so they hold only reads, writes and rules."""

from __future__ import annotations

import json
from typing import Any

from aiplane.events.models import EventRecord, RawEventRecord


def event_view(record: EventRecord) -> dict[str, Any]:
    return {"id": record.event_id, "nid": int(record.nid), "created_at": record.created_at,
            "event_type": record.event_type, "event_source": record.event_source,
            "aggregate_id": record.aggregate_id, "aggregate_type": record.aggregate_type,
            "version": int(record.version), "data": json.loads(record.data), "metadata": json.loads(record.metadata)}


def raw_event_view(record: RawEventRecord) -> dict[str, Any]:
    return {"id": record.raw_id, "nid": int(record.nid), "received_at": record.received_at, "path": record.path,
            "headers": json.loads(record.headers), "payload": json.loads(record.payload)}
