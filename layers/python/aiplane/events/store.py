"""The event store: domain events (appended, queried, streamed, deleted), raw webhook events, and
the mappings that turn raw events into domain events. Appending an event also puts it on the
domain event bus, where a rule hands it to the event-trigger runner."""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError

from aiplane.clock import now, parse_rfc3339, rfc3339
from aiplane.data.conditions import refused_by_condition
from aiplane.data.event_bus import put_events
from aiplane.data.models import get_or_404
from aiplane.data.shards import SHARDS, merged, shard_keys, shard_page_size
from aiplane.errors import ConflictError, NotFoundError, UnavailableError, ValidationError
from aiplane.events.extract import extract
from aiplane.events.models import CounterRecord, EventRecord, EventTypeRecord, MappingRecord, RawEventRecord
from aiplane.observability import logger
from aiplane_shared import resources

CLOCK_SKEW = timedelta(minutes=10)
EVENT_TYPES_PARTITION = "EVENTTYPES"
RAW_EVENTS_PARTITION = "RAWEVENTS"
MAPPING_CACHE_TTL_S = 30.0
# Request headers never kept with a raw event: they carry credentials.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "x-backendai-token", "proxy-authorization"})


def _next_nid(counter: str) -> int:
    """A unique numeric id from one of SHARDS counter items picked at random (no single item every
    append writes): shard s hands out v * SHARDS + s, so ids are unique but neither dense nor in time order."""
    shard = random.randrange(SHARDS)
    record = CounterRecord(f"COUNTER#{counter}#{shard}", "NID")
    try:
        record.update(actions=[CounterRecord.value.add(1)], condition=CounterRecord.value.exists())
    except UpdateError as error:
        if not refused_by_condition(error):
            raise
        _start_counter_shard(record, counter)
        record.update(actions=[CounterRecord.value.add(1)])
    return int(record.value) * SHARDS + shard


def _start_counter_shard(record: CounterRecord, counter: str) -> None:
    """A shard's first use starts it above the single counter of earlier versions (`COUNTER / <name>`),
    so no id it ever handed out comes again (no backfill needed)."""
    try:
        earlier = int(CounterRecord.get("COUNTER", counter, consistent_read=True).value)
    except DoesNotExist:
        earlier = 0
    record.value = earlier // SHARDS + 1
    try:
        record.save(condition=CounterRecord.pk.does_not_exist())
    except PutError as error:
        if not refused_by_condition(error):  # another writer started it first
            raise


def _required_text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} is required", param=field)
    return value


# ---- events ------------------------------------------------------------------------------------

def event_view(record: EventRecord) -> dict[str, Any]:
    return {"id": record.event_id, "nid": int(record.nid), "created_at": record.created_at,
            "event_type": record.event_type, "event_source": record.event_source,
            "aggregate_id": record.aggregate_id, "aggregate_type": record.aggregate_type,
            "version": int(record.version), "data": json.loads(record.data), "metadata": json.loads(record.metadata)}


def prepare_event(body: dict[str, Any]) -> dict[str, Any]:
    """The validated event, ids and time filled in; nothing is written yet."""
    event_type = _required_text(body, "event_type")
    aggregate_id = _required_text(body, "aggregate_id")
    aggregate_type = _required_text(body, "aggregate_type")
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError("version must be an integer greater than 0", param="version")
    source = body.get("event_source") or ""
    if not isinstance(source, str):
        raise ValidationError("event_source must be a string", param="event_source")
    event_id = body.get("id") or str(uuid.uuid4())
    if not isinstance(event_id, str) or "#" in event_id:
        raise ValidationError("id must be a string without '#'", param="id")
    current = now()
    if body.get("created_at"):
        if not isinstance(body["created_at"], str):
            raise ValidationError("created_at must be an RFC3339 timestamp", param="created_at")
        created = parse_rfc3339(body["created_at"], "created_at")
        if abs(created - current) > CLOCK_SKEW:
            raise ValidationError("created_at must be within 10 minutes of the server time", param="created_at")
    else:
        created = current
    return {"id": event_id, "created_at": rfc3339(created), "event_type": event_type, "event_source": source,
            "aggregate_id": aggregate_id, "aggregate_type": aggregate_type, "version": version,
            "data": body.get("data"), "metadata": body.get("metadata")}


def _event_record(event: dict[str, Any]) -> EventRecord:
    sort = f"{event['created_at']}#{event['id']}"
    return EventRecord(
        f"EVENTTYPE#{event['event_type']}", sort,
        gsi1pk=f"EVENTAGG#{event['event_type']}#{event['aggregate_type']}#{event['aggregate_id']}", gsi1sk=sort,
        gsi2pk=f"EVENTSRC#{event['event_source']}", gsi2sk=sort,
        event_id=event["id"], nid=event["nid"], created_at=event["created_at"], event_type=event["event_type"],
        event_source=event["event_source"], aggregate_id=event["aggregate_id"], aggregate_type=event["aggregate_type"],
        version=event["version"], data=json.dumps(event["data"]), metadata=json.dumps(event["metadata"]),
    )


def save_event(event: dict[str, Any], *, depth: int = 0, origin: str | None = None) -> dict[str, Any]:
    """Stores a prepared event and publishes it on the domain bus (`depth`: how many function runs
    led to it, so triggers cannot loop forever; `origin`: the appended event that started the chain,
    whose event budget the chain shares)."""
    record = _event_record({**event, "nid": _next_nid("events")})
    try:
        record.save(condition=EventRecord.pk.does_not_exist())
    except PutError as error:
        if refused_by_condition(error):
            raise ConflictError(f"event {event['id']!r} already exists", param="id") from None
        raise
    view = event_view(record)
    try:
        publish(view, depth, origin)
    except Exception:
        record.delete()  # an event the triggers never see is not appended
        logger.exception("publishing an event failed", extra={"event_id": view["id"]})
        raise UnavailableError("the event bus did not accept the event; it was not appended") from None
    kind = EventTypeRecord(EVENT_TYPES_PARTITION, view["event_type"])
    kind.update(actions=[EventTypeRecord.first_at.set(EventTypeRecord.first_at | view["created_at"]),
                         EventTypeRecord.last_at.set(view["created_at"])])
    return view


def publish(event: dict[str, Any], depth: int, origin: str | None = None) -> None:
    put_events(resources.DOMAIN_EVENT_BUS, resources.RUNTIME_EVENT_SOURCE, resources.RUNTIME_EVENT_DETAIL_TYPE,
               [{"event": event, "depth": depth, "origin": origin or event["id"]}])


def append_event(body: dict[str, Any], *, depth: int = 0, origin: str | None = None) -> dict[str, Any]:
    return save_event(prepare_event(body), depth=depth, origin=origin)


def _between(start: str, end: str) -> Any:
    return EventRecord.sk.between(start, f"{end}#\uffff")


def events_by_type(event_type: str, start: str, end: str, limit: int) -> list[dict[str, Any]]:
    records = EventRecord.query(f"EVENTTYPE#{event_type}", range_key_condition=_between(start, end), limit=limit)
    return [event_view(record) for record in records]


def events_by_aggregate(event_type: str, aggregate_type: str, aggregate_id: str, start: str, end: str,
                        limit: int) -> list[dict[str, Any]]:
    records = EventRecord.by_aggregate.query(
        f"EVENTAGG#{event_type}#{aggregate_type}#{aggregate_id}",
        range_key_condition=EventRecord.gsi1sk.between(start, f"{end}#\uffff"), limit=limit)
    return [event_view(record) for record in records]


def events_by_source(event_source: str, event_type: str | None, start: str, end: str, limit: int) -> list[dict[str, Any]]:
    records = EventRecord.by_source.query(
        f"EVENTSRC#{event_source}", range_key_condition=EventRecord.gsi2sk.between(start, f"{end}#\uffff"),
        filter_condition=(EventRecord.event_type == event_type) if event_type else None, page_size=limit)
    return [event_view(record) for record in itertools.islice(records, limit)]


def event_types(start: str, end: str, limit: int) -> list[str]:
    records = EventTypeRecord.query(EVENT_TYPES_PARTITION,
                                    filter_condition=(EventTypeRecord.last_at >= start) & (EventTypeRecord.first_at <= f"{end}\uffff"))
    return [record.sk for record in itertools.islice(records, limit)]


def delete_events_of_type(event_type: str, start: str, end: str) -> int:
    deleted = 0
    with EventRecord.batch_write() as batch:
        for record in EventRecord.query(f"EVENTTYPE#{event_type}", range_key_condition=_between(start, end)):
            batch.delete(record)
            deleted += 1
    if not next(iter(EventRecord.query(f"EVENTTYPE#{event_type}", limit=1)), None):
        EventTypeRecord(EVENT_TYPES_PARTITION, event_type).delete()
    return deleted


def stream_events(event_type: str, last_event_id: str | None, *, window_s: float, poll_s: float = 1.0) -> Iterator[str]:
    """SSE frames of the events of a type appended from now (or after `Last-Event-ID`) until the
    window ends; each frame's id is the event's position, so a client resumes where it left off."""
    position = last_event_id if last_event_id and "#" in last_event_id else f"{rfc3339(now())}#"
    yield ": stream open\n\n"
    ends = time.monotonic() + window_s
    while True:
        for record in EventRecord.query(f"EVENTTYPE#{event_type}", range_key_condition=EventRecord.sk > position,
                                        consistent_read=True):
            position = record.sk
            yield f"id: {record.sk}\ndata: {json.dumps(event_view(record))}\n\n"
        remaining = ends - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(poll_s, remaining))


# ---- raw events --------------------------------------------------------------------------------

def raw_event_view(record: RawEventRecord) -> dict[str, Any]:
    return {"id": record.raw_id, "nid": int(record.nid), "received_at": record.received_at, "path": record.path,
            "headers": json.loads(record.headers), "payload": json.loads(record.payload)}


def validate_payload(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValidationError("the payload must be a JSON object", param="payload")
    return payload


def kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() not in SECRET_HEADERS}


def store_raw_event(path: str, headers: dict[str, str], payload: dict[str, Any]) -> dict[str, Any]:
    nid = _next_nid("raw-events")
    received = rfc3339(now())
    record = RawEventRecord(raw_events_key(nid), f"{received}#{nid:020d}", gsi1pk=f"RAWEVENT#{nid}", gsi1sk=received,
                            raw_id=str(uuid.uuid4()), nid=nid, received_at=received, path=path,
                            headers=json.dumps(headers), payload=json.dumps(payload))
    record.save()
    return raw_event_view(record)


def raw_events_key(nid: int) -> str:
    return f"{RAW_EVENTS_PARTITION}#{nid % SHARDS}"


def list_raw_events(start: str, end: str, limit: int) -> list[dict[str, Any]]:
    """Newest first: the shards' Queries merged (aiplane.data.shards)."""
    shards = [RawEventRecord.query(key, range_key_condition=RawEventRecord.sk.between(start, f"{end}#\uffff"),
                                   scan_index_forward=False, page_size=shard_page_size(limit))
              for key in shard_keys(RAW_EVENTS_PARTITION)]
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
    records = RawEventRecord.by_nid.query(f"RAWEVENT#{nid}", range_key_condition=RawEventRecord.gsi1sk.between(start, end))
    record = next(iter(records), None)
    if record is None:
        raise NotFoundError(f"no raw event with nid {nid} in that time range", param="nid")
    return raw_event_view(record)


# ---- mappings ----------------------------------------------------------------------------------

_TEXT_FIELDS = ("eventType", "eventTypeField", "eventSource", "eventSourceField", "aggregateType",
                "aggregateTypeField", "aggregateIDField", "eventIDField")
_mapping_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def validate_mapping(body: dict[str, Any]) -> dict[str, Any]:
    path = _required_text(body, "path")
    mapping: dict[str, Any] = {"path": path}
    for field in _TEXT_FIELDS:
        value = body.get(field) or ""
        if not isinstance(value, str):
            raise ValidationError(f"{field} must be a string", param=field)
        mapping[field] = value
    for fixed, field in (("eventType", "eventTypeField"), ("aggregateType", "aggregateTypeField")):
        if not mapping[fixed] and not mapping[field]:
            raise ValidationError(f"{fixed} or {field} is required", param=fixed)
    if not mapping["aggregateIDField"]:
        raise ValidationError("aggregateIDField is required", param="aggregateIDField")
    version = body.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValidationError("version must be a non-negative integer", param="version")
    mapping["version"] = version
    metadata = body.get("metadataMapping") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValidationError("metadataMapping must map names to field references", param="metadataMapping")
    mapping["metadataMapping"] = metadata
    return mapping


def _save_mapping(mapping: dict[str, Any], condition: Any) -> dict[str, Any]:
    record = MappingRecord(f"MAPPING#{mapping['path']}", "META", gsi1sk=mapping["path"], body=json.dumps(mapping))
    record.save(condition=condition)
    _mapping_cache.pop(mapping["path"], None)
    return mapping


def create_mapping(body: dict[str, Any]) -> dict[str, Any]:
    mapping = validate_mapping(body)
    try:
        return _save_mapping(mapping, MappingRecord.pk.does_not_exist())
    except PutError as error:
        if refused_by_condition(error):
            raise ConflictError(f"a mapping for path {mapping['path']!r} exists", param="path") from None
        raise


def update_mapping(path: str, body: dict[str, Any]) -> dict[str, Any]:
    mapping = validate_mapping({**body, "path": path})
    try:
        return _save_mapping(mapping, MappingRecord.pk.exists())
    except PutError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"no mapping for path {path!r}", param="path") from None
        raise


def get_mapping(path: str) -> dict[str, Any]:
    record = get_or_404(MappingRecord, f"MAPPING#{path}", "META", missing=f"no mapping for path {path!r}", param="path")
    return json.loads(record.body)


def cached_mapping(path: str) -> dict[str, Any]:
    """Ingest's read: a per-process cache refreshed every 30 s, and at once by POST /sync."""
    hit = _mapping_cache.get(path)
    if hit and time.monotonic() - hit[0] < MAPPING_CACHE_TTL_S:
        return hit[1]
    mapping = get_mapping(path)
    _mapping_cache[path] = (time.monotonic(), mapping)
    return mapping


def delete_mapping(path: str) -> None:
    try:
        MappingRecord(f"MAPPING#{path}", "META").delete(condition=MappingRecord.pk.exists())
    except DeleteError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"no mapping for path {path!r}", param="path") from None
        raise
    _mapping_cache.pop(path, None)


def list_mappings() -> list[dict[str, Any]]:
    return [json.loads(record.body) for record in MappingRecord.by_path.query("MAPPINGS")]


def sync_mappings() -> int:
    """Reloads the mapping cache from storage; returns how many mappings it holds."""
    loaded = time.monotonic()
    mappings = list_mappings()
    _mapping_cache.clear()
    _mapping_cache.update({mapping["path"]: (loaded, mapping) for mapping in mappings})
    return len(mappings)


def map_raw_event(mapping: dict[str, Any], payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """The domain event a mapping makes of a webhook payload (validated, not yet stored)."""
    def field(fixed: str, reference: str) -> Any:
        return mapping.get(fixed) or (extract(mapping[reference], payload, headers) if mapping.get(reference) else None)

    def text(value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    body = {
        "event_type": text(field("eventType", "eventTypeField")),
        "event_source": text(field("eventSource", "eventSourceField")) or "",
        "aggregate_type": text(field("aggregateType", "aggregateTypeField")),
        "aggregate_id": text(extract(mapping["aggregateIDField"], payload, headers)),
        "version": mapping.get("version") or 1,
        "data": payload,
        "metadata": {name: extract(reference, payload, headers) for name, reference in mapping["metadataMapping"].items()},
    }
    if mapping.get("eventIDField"):
        body["id"] = text(extract(mapping["eventIDField"], payload, headers))
    try:
        return prepare_event(body)
    except ValidationError as error:
        raise ValidationError(f"the mapping for {mapping['path']!r} does not fit the payload: {error.message}",
                              param=error.param) from None


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
