"""The event store: domain events appended (validated, numbered, stored and put on the domain event
bus, where a rule hands them to the event-trigger runner), queried, streamed and deleted.

Raw webhook events live in `raw.py`, the mappings that turn them into domain events in `mappings.py`,
and the response shapes in `views.py`."""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from aiplane.clock import now, parse_rfc3339, rfc3339
from aiplane.data.conditions import refused_by_condition
from aiplane.data.event_bus import put_events
from aiplane.data.models import get_or_none
from aiplane.data.shards import SHARDS
from aiplane.errors import ConflictError, UnavailableError, ValidationError
from aiplane.events.models import CounterRecord, EventRecord, EventTypeRecord
from aiplane.events.views import event_view
from aiplane.observability import logger
from aiplane_shared import resources

CLOCK_SKEW = timedelta(minutes=10)
EVENT_TYPES_PARTITION = "EVENTTYPES"


def next_nid(counter: str) -> int:
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
    single = get_or_none(CounterRecord, "COUNTER", counter, consistent_read=True)
    earlier = int(single.value) if single is not None else 0
    record.value = earlier // SHARDS + 1
    try:
        record.save(condition=CounterRecord.pk.does_not_exist())
    except PutError as error:
        if not refused_by_condition(error):  # another writer started it first
            raise


def required_text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} is required", param=field)
    return value


def prepare_event(body: dict[str, Any]) -> dict[str, Any]:
    """The validated event, ids and time filled in; nothing is written yet."""
    event_type = required_text(body, "event_type")
    aggregate_id = required_text(body, "aggregate_id")
    aggregate_type = required_text(body, "aggregate_type")
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
    return {
        "id": event_id,
        "created_at": rfc3339(created),
        "event_type": event_type,
        "event_source": source,
        "aggregate_id": aggregate_id,
        "aggregate_type": aggregate_type,
        "version": version,
        "data": body.get("data"),
        "metadata": body.get("metadata"),
    }


def _event_record(event: dict[str, Any]) -> EventRecord:
    sort = f"{event['created_at']}#{event['id']}"
    return EventRecord(
        f"EVENTTYPE#{event['event_type']}",
        sort,
        gsi1pk=f"EVENTAGG#{event['event_type']}#{event['aggregate_type']}#{event['aggregate_id']}",
        gsi1sk=sort,
        gsi2pk=f"EVENTSRC#{event['event_source']}",
        gsi2sk=sort,
        event_id=event["id"],
        nid=event["nid"],
        created_at=event["created_at"],
        event_type=event["event_type"],
        event_source=event["event_source"],
        aggregate_id=event["aggregate_id"],
        aggregate_type=event["aggregate_type"],
        version=event["version"],
        data=json.dumps(event["data"]),
        metadata=json.dumps(event["metadata"]),
    )


def save_event(event: dict[str, Any], *, depth: int = 0, origin: str | None = None) -> dict[str, Any]:
    """Stores a prepared event and publishes it on the domain bus (`depth`: how many function runs
    led to it, so triggers cannot loop forever; `origin`: the appended event that started the chain,
    whose event budget the chain shares)."""
    record = _event_record({**event, "nid": next_nid("events")})
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
    kind.update(
        actions=[
            EventTypeRecord.first_at.set(EventTypeRecord.first_at | view["created_at"]),
            EventTypeRecord.last_at.set(view["created_at"]),
        ]
    )
    return view


def publish(event: dict[str, Any], depth: int, origin: str | None = None) -> None:
    put_events(
        resources.DOMAIN_EVENT_BUS,
        resources.RUNTIME_EVENT_SOURCE,
        resources.RUNTIME_EVENT_DETAIL_TYPE,
        [{"event": event, "depth": depth, "origin": origin or event["id"]}],
    )


def append_event(body: dict[str, Any], *, depth: int = 0, origin: str | None = None) -> dict[str, Any]:
    return save_event(prepare_event(body), depth=depth, origin=origin)


def _between(start: str, end: str) -> Any:
    return EventRecord.sk.between(start, f"{end}#\uffff")


def events_by_type(event_type: str, start: str, end: str, limit: int) -> list[dict[str, Any]]:
    records = EventRecord.query(f"EVENTTYPE#{event_type}", range_key_condition=_between(start, end), limit=limit)
    return [event_view(record) for record in records]


def events_by_aggregate(
    event_type: str, aggregate_type: str, aggregate_id: str, start: str, end: str, limit: int
) -> list[dict[str, Any]]:
    records = EventRecord.by_aggregate.query(
        f"EVENTAGG#{event_type}#{aggregate_type}#{aggregate_id}",
        range_key_condition=EventRecord.gsi1sk.between(start, f"{end}#\uffff"),
        limit=limit,
    )
    return [event_view(record) for record in records]


def events_by_source(
    event_source: str, event_type: str | None, start: str, end: str, limit: int
) -> list[dict[str, Any]]:
    records = EventRecord.by_source.query(
        f"EVENTSRC#{event_source}",
        range_key_condition=EventRecord.gsi2sk.between(start, f"{end}#\uffff"),
        filter_condition=(EventRecord.event_type == event_type) if event_type else None,
        page_size=limit,
    )
    return [event_view(record) for record in itertools.islice(records, limit)]


def event_types(start: str, end: str, limit: int) -> list[str]:
    records = EventTypeRecord.query(
        EVENT_TYPES_PARTITION,
        filter_condition=(EventTypeRecord.last_at >= start) & (EventTypeRecord.first_at <= f"{end}\uffff"),
    )
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
        for record in EventRecord.query(
            f"EVENTTYPE#{event_type}", range_key_condition=EventRecord.sk > position, consistent_read=True
        ):
            position = record.sk
            yield f"id: {record.sk}\ndata: {json.dumps(event_view(record))}\n\n"
        remaining = ends - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(poll_s, remaining))
