"""runtime events routes: the event store, raw webhook events, mappings, ingest and replay.

Contract rows of this group:
- DELETE /events/type
- DELETE /mapping
- GET /events/aggregate
- GET /events/source
- GET /events/stream/{eventType} (SSE for a bounded window; resumes after Last-Event-ID)
- GET /events/type
- GET /events/types
- GET /mapping
- GET /mappings
- GET /raw-events
- GET /raw-events/{nid}
- POST /events
- POST /ingest
- POST /mappings
- POST /raw-events
- POST /replay
- POST /sync
- PUT /mapping
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from aiplane.api.permissions import resource_permission
from aiplane.data.pagination import parse_limit
from aiplane.errors import ValidationError
from aiplane.events import mappings, raw, store
from aiplane.events.timerange import window

router = APIRouter(dependencies=[Depends(resource_permission("events"))])

STREAM_WINDOW_S = 25.0  # under API Gateway's 29 s integration limit; clients reconnect with Last-Event-ID


def _required(value: str | None, param: str) -> str:
    if not value:
        raise ValidationError(f"{param} is required", param=param)
    return value


def _object(body: Any, param: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object", param=param)
    return body


@router.post("/events", status_code=201)
def append_event(body: Any = Body(...)) -> dict[str, Any]:
    return store.append_event(_object(body))


@router.get("/events/type")
def events_by_type(
    event_type: str | None = Query(None),
    limit: str | None = Query(None),
    from_: str | None = Query(None, alias="from"),
    to: str | None = Query(None),
) -> list[dict[str, Any]]:
    start, end = window(from_, to)
    return store.events_by_type(_required(event_type, "event_type"), start, end, parse_limit(limit))


@router.delete("/events/type")
def delete_events_by_type(
    event_type: str | None = Query(None), from_: str | None = Query(None, alias="from"), to: str | None = Query(None)
) -> str:
    event_type = _required(event_type, "event_type")
    start, end = window(from_, to, required=True)
    return f"deleted {store.delete_events_of_type(event_type, start, end)} events"


@router.get("/events/aggregate")
def events_by_aggregate(
    event_type: str | None = Query(None),
    aggregate_type: str | None = Query(None),
    aggregate_id: str | None = Query(None),
    limit: str | None = Query(None),
    from_: str | None = Query(None, alias="from"),
    to: str | None = Query(None),
) -> list[dict[str, Any]]:
    event_type = _required(event_type, "event_type")
    aggregate_type = _required(aggregate_type, "aggregate_type")
    aggregate_id = _required(aggregate_id, "aggregate_id")
    start, end = window(from_, to)
    return store.events_by_aggregate(event_type, aggregate_type, aggregate_id, start, end, parse_limit(limit))


@router.get("/events/source")
def events_by_source(
    event_source: str | None = Query(None),
    event_type: str | None = Query(None),
    limit: str | None = Query(None),
    from_: str | None = Query(None, alias="from"),
    to: str | None = Query(None),
) -> list[dict[str, Any]]:
    start, end = window(from_, to)
    return store.events_by_source(_required(event_source, "event_source"), event_type, start, end, parse_limit(limit))


@router.get("/events/types")
def event_types(
    limit: str | None = Query(None), from_: str | None = Query(None, alias="from"), to: str | None = Query(None)
) -> list[str]:
    start, end = window(from_, to)
    return store.event_types(start, end, parse_limit(limit))


@router.get("/events/stream/{eventType}")
def stream_events(eventType: str, last_event_id: str | None = Header(None)) -> StreamingResponse:
    frames = store.stream_events(eventType, last_event_id, window_s=STREAM_WINDOW_S)
    return StreamingResponse(frames, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/raw-events")
def list_raw_events(
    limit: str | None = Query(None), from_: str | None = Query(None, alias="from"), to: str | None = Query(None)
) -> list[dict[str, Any]]:
    start, end = window(from_, to)
    return raw.list_raw_events(start, end, parse_limit(limit))


@router.post("/raw-events", status_code=201)
def create_raw_event(body: Any = Body(...)) -> dict[str, Any]:
    body = _object(body)
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise ValidationError("path is required", param="path")
    headers = body.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ValidationError("headers must map names to strings", param="headers")
    return raw.store_raw_event(path, raw.kept_headers(headers), raw.validate_payload(body.get("payload")))


@router.get("/raw-events/{nid}")
def get_raw_event(
    nid: str, from_: str | None = Query(None, alias="from"), to: str | None = Query(None)
) -> dict[str, Any]:
    number = raw.parse_nid(nid)
    start, end = window(from_, to, required=True)
    return raw.get_raw_event(number, start, end)


@router.get("/mappings")
def list_mappings() -> list[dict[str, Any]]:
    return mappings.list_mappings()


@router.post("/mappings", status_code=201)
def create_mapping(body: Any = Body(...)) -> dict[str, Any]:
    return mappings.create_mapping(_object(body))


@router.get("/mapping")
def get_mapping(path: str | None = Query(None)) -> dict[str, Any]:
    return mappings.get_mapping(_required(path, "path"))


@router.put("/mapping")
def update_mapping(path: str | None = Query(None), body: Any = Body(...)) -> dict[str, Any]:
    return mappings.update_mapping(_required(path, "path"), _object(body))  # the query's path wins


@router.delete("/mapping")
def delete_mapping(path: str | None = Query(None)) -> str:
    mappings.delete_mapping(_required(path, "path"))
    return "mapping deleted"


@router.post("/ingest", status_code=201)
def ingest(request: Request, path: str | None = Query(None), body: Any = Body(...)) -> dict[str, Any]:
    return raw.ingest(_required(path, "path"), body, dict(request.headers))  # webhook headers are kept


@router.post("/replay", status_code=202)
def replay(
    nid: str | None = Query(None), from_: str | None = Query(None, alias="from"), to: str | None = Query(None)
) -> JSONResponse:
    number = raw.parse_nid(_required(nid, "nid"))
    start, end = window(from_, to, required=True)
    raw.replay(number, start, end)
    return JSONResponse("event replayed", status_code=202)


@router.post("/sync")
def sync() -> str:
    return f"synced {mappings.sync_mappings()} mappings"
