"""The event store (inventory section T): append with generated ids and the ±10 min rule, queries
by type, aggregate, source and the distinct types with default and explicit windows, deletion by
type, and the bounded SSE stream that resumes after Last-Event-ID."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from functions.runtime_events import routes as event_routes

EVENT_FIELDS = {
    "id",
    "nid",
    "created_at",
    "event_type",
    "event_source",
    "aggregate_id",
    "aggregate_type",
    "version",
    "data",
    "metadata",
}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append(runtime, headers, event_type, **fields):
    body = {
        "event_type": event_type,
        "aggregate_type": "order",
        "aggregate_id": "o-1",
        "version": 1,
        "event_source": "shop",
        "data": {"n": 1},
        "metadata": {"m": "x"},
        **fields,
    }
    response = runtime.post("/events", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_append_generates_id_time_and_nid(runtime, headers, unique):
    event_type = unique("created")
    first = append(runtime, headers, event_type)
    second = append(runtime, headers, event_type, id="my-id", created_at=iso(datetime.now(UTC) - timedelta(minutes=5)))
    assert set(first) == EVENT_FIELDS and first["id"] and first["created_at"].endswith("Z")
    assert first["data"] == {"n": 1} and first["metadata"] == {"m": "x"}
    assert second["id"] == "my-id" and second["nid"] != first["nid"]  # unique, not ordered: sharded counters
    assert runtime.post("/events", json={**second, "nid": None}, headers=headers).status_code == 409


def test_append_validation(runtime, headers):
    base = {"event_type": "t", "aggregate_type": "a", "aggregate_id": "1", "version": 1}
    cases = [
        ({"event_type": ""}, "event_type"),
        ({"aggregate_id": None}, "aggregate_id"),
        ({"aggregate_type": 3}, "aggregate_type"),
        ({"version": 0}, "version"),
        ({"version": "1"}, "version"),
        ({"created_at": iso(datetime.now(UTC) + timedelta(minutes=11))}, "created_at"),
        ({"created_at": iso(datetime.now(UTC) - timedelta(minutes=11))}, "created_at"),
        ({"created_at": "not a time"}, "created_at"),
    ]
    for change, param in cases:
        response = runtime.post("/events", json={**base, **change}, headers=headers)
        assert response.status_code == 400, change
        assert response.json()["error"]["param"] == param
    assert runtime.post("/events", json=[base], headers=headers).status_code == 400
    assert runtime.post("/events", headers=headers).status_code == 400


def test_queries_by_type_aggregate_source_and_types(runtime, headers, unique):
    event_type, other_type, source = unique("paid"), unique("shipped"), unique("src")
    a = append(runtime, headers, event_type, aggregate_id="o-a", event_source=source)
    b = append(runtime, headers, event_type, aggregate_id="o-b", event_source=source)
    c = append(runtime, headers, other_type, aggregate_id="o-a", event_source=source)

    by_type = runtime.get("/events/type", params={"event_type": event_type}, headers=headers).json()
    assert [event["id"] for event in by_type] == [a["id"], b["id"]]
    assert [
        e["id"]
        for e in runtime.get("/events/type", params={"event_type": event_type, "limit": "1"}, headers=headers).json()
    ] == [a["id"]]

    aggregate = runtime.get(
        "/events/aggregate",
        params={"event_type": event_type, "aggregate_type": "order", "aggregate_id": "o-a"},
        headers=headers,
    ).json()
    assert [event["id"] for event in aggregate] == [a["id"]]
    assert runtime.get("/events/aggregate", params={"event_type": event_type}, headers=headers).status_code == 400

    from_source = runtime.get("/events/source", params={"event_source": source}, headers=headers).json()
    assert [event["id"] for event in from_source] == [a["id"], b["id"], c["id"]]
    only_type = runtime.get(
        "/events/source", params={"event_source": source, "event_type": other_type}, headers=headers
    ).json()
    assert [event["id"] for event in only_type] == [c["id"]]
    assert runtime.get("/events/source", headers=headers).status_code == 400

    types = runtime.get("/events/types", params={"limit": "1000"}, headers=headers).json()
    assert {event_type, other_type} <= set(types)
    long_ago = {"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}
    assert event_type not in runtime.get("/events/types", params=long_ago, headers=headers).json()
    assert runtime.get("/events/type", params={"event_type": event_type, **long_ago}, headers=headers).json() == []
    assert (
        runtime.get(
            "/events/type",
            params={"event_type": event_type, "from": "2030-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"},
            headers=headers,
        ).status_code
        == 400
    )
    assert (
        runtime.get("/events/type", params={"event_type": event_type, "from": "soon"}, headers=headers).status_code
        == 400
    )


def test_delete_by_type_needs_the_window_and_removes_the_type(runtime, headers, unique):
    event_type = unique("gdpr")
    append(runtime, headers, event_type)
    append(runtime, headers, event_type)
    window = {"from": iso(datetime.now(UTC) - timedelta(hours=1)), "to": iso(datetime.now(UTC) + timedelta(minutes=1))}
    assert runtime.delete("/events/type", params={"event_type": event_type}, headers=headers).status_code == 400
    assert runtime.delete("/events/type", params=window, headers=headers).status_code == 400
    deleted = runtime.delete("/events/type", params={"event_type": event_type, **window}, headers=headers)
    assert deleted.status_code == 200 and deleted.json() == "deleted 2 events"
    assert runtime.get("/events/type", params={"event_type": event_type}, headers=headers).json() == []
    assert event_type not in runtime.get("/events/types", params={"limit": "1000"}, headers=headers).json()


def test_stream_sends_new_events_and_resumes_after_last_event_id(runtime, headers, unique, monkeypatch):
    monkeypatch.setattr(event_routes, "STREAM_WINDOW_S", 2.0)
    event_type = unique("live")
    append(runtime, headers, event_type, aggregate_id="before")  # before the stream opened: not sent

    def append_soon():
        time.sleep(0.5)
        append(runtime, headers, event_type, aggregate_id="during")

    writer = threading.Thread(target=append_soon)
    writer.start()
    started = time.monotonic()
    response = runtime.get(f"/events/stream/{event_type}", headers=headers)
    writer.join()
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert time.monotonic() - started < 10
    frames = [frame for frame in response.text.split("\n\n") if frame.startswith("id: ")]
    assert len(frames) == 1 and '"aggregate_id": "during"' in frames[0]
    last_id = frames[0].splitlines()[0][len("id: ") :]

    append(runtime, headers, event_type, aggregate_id="after")
    resumed = runtime.get(f"/events/stream/{event_type}", headers={**headers, "Last-Event-ID": last_id})
    frames = [frame for frame in resumed.text.split("\n\n") if frame.startswith("id: ")]
    assert len(frames) == 1 and '"aggregate_id": "after"' in frames[0]
