"""Raw webhook events: stored as received (credentials stripped), listed and read by nid, and turned
into domain events (ingest, and replay with the current mapping) through `mappings.py` and `store.py`."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

from aiplane.clock import now, rfc3339
from aiplane.data.shards import SHARDS, merged, shard_keys, shard_page_size
from aiplane.errors import NotFoundError, ValidationError
from aiplane.events.mappings import cached_mapping, get_mapping, map_raw_event
from aiplane.events.models import RawEventRecord
from aiplane.events.store import next_nid, save_event
from aiplane.events.views import raw_event_view

RAW_EVENTS_PARTITION = "RAWEVENTS"
# Request headers never kept with a raw event: they carry credentials.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "x-backendai-token", "proxy-authorization"})


def validate_payload(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValidationError("the payload must be a JSON object", param="payload")
    return payload


def kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() not in SECRET_HEADERS}


def store_raw_event(path: str, headers: dict[str, str], payload: dict[str, Any]) -> dict[str, Any]:
    nid = next_nid("raw-events")
    received = rfc3339(now())
    record = RawEventRecord(
        raw_events_key(nid),
        f"{received}#{nid:020d}",
        gsi1pk=f"RAWEVENT#{nid}",
        gsi1sk=received,
        raw_id=str(uuid.uuid4()),
        nid=nid,
        received_at=received,
        path=path,
        headers=json.dumps(headers),
        payload=json.dumps(payload),
    )
    record.save()
    return raw_event_view(record)


def raw_events_key(nid: int) -> str:
    return f"{RAW_EVENTS_PARTITION}#{nid % SHARDS}"


def list_raw_events(start: str, end: str, limit: int) -> list[dict[str, Any]]:
    """Newest first: the shards' Queries merged (aiplane.data.shards)."""
    shards = [
        RawEventRecord.query(
            key,
            range_key_condition=RawEventRecord.sk.between(start, f"{end}#\uffff"),
            scan_index_forward=False,
            page_size=shard_page_size(limit),
        )
        for key in shard_keys(RAW_EVENTS_PARTITION)
    ]
    records = merged(shards, key=lambda record: record.sk, reverse=True)
    return [raw_event_view(record) for record in itertools.islice(records, limit)]


def parse_nid(raw: str) -> int:
    try:
        nid = int(raw)
    except (TypeError, ValueError):
        raise ValidationError("nid must be an integer", param="nid") from None
    if nid < 1:
        raise ValidationError("nid must be positive", param="nid")
    return nid


def get_raw_event(nid: int, start: str, end: str) -> dict[str, Any]:
    records = RawEventRecord.by_nid.query(
        f"RAWEVENT#{nid}", range_key_condition=RawEventRecord.gsi1sk.between(start, end)
    )
    record = next(iter(records), None)
    if record is None:
        raise NotFoundError(f"no raw event with nid {nid} in that time range", param="nid")
    return raw_event_view(record)


def ingest(path: str, payload: Any, headers: dict[str, str]) -> dict[str, Any]:
    """Stores the raw webhook event and appends the event its mapping makes of it."""
    payload = validate_payload(payload)
    headers = kept_headers(headers)
    event = map_raw_event(cached_mapping(path), payload, headers)
    store_raw_event(path, headers, payload)
    return save_event(event)


def replay(nid: int, start: str, end: str) -> dict[str, Any]:
    """Maps a stored raw event again with the current mapping and appends the result."""
    raw = get_raw_event(nid, start, end)
    event = map_raw_event(get_mapping(raw["path"]), raw["payload"], raw["headers"])
    return save_event({**event, "id": str(uuid.uuid4())})
