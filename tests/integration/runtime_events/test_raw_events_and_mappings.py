"""Raw events, mappings, ingest, replay and sync (inventory sections U and V): webhook headers are
kept (credentials dropped), fields are extracted by JSON path or header, replay re-maps with the
current mapping (202), and nothing is written when a payload does not fit its mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

RAW_FIELDS = {"id", "nid", "received_at", "path", "headers", "payload"}


def window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "from": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "to": (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def github_mapping(path: str, **changes) -> dict:
    return {
        "path": path,
        "eventTypeField": "header:X-GitHub-Event",
        "eventSource": "github.com",
        "aggregateType": "github.repository",
        "aggregateIDField": "$.repository.id",
        "eventIDField": "",
        "version": 2,
        "metadataMapping": {
            "delivery": "header:X-GitHub-Delivery",
            "sender": "sender.login",
            "first_commit": "commits[0].id",
        },
        **changes,
    }


def test_raw_events_store_list_newest_first_and_get_by_nid(runtime, headers, unique):
    path = unique("/hooks/raw")
    first = runtime.post(
        "/raw-events", json={"path": path, "payload": {"a": 1}, "headers": {"X-Thing": "1"}}, headers=headers
    )
    second = runtime.post("/raw-events", json={"path": path, "payload": {"a": 2}}, headers=headers)
    assert first.status_code == 201 and set(first.json()) == RAW_FIELDS and first.json()["headers"] == {"X-Thing": "1"}
    listed = [
        raw
        for raw in runtime.get("/raw-events", params={"limit": "1000"}, headers=headers).json()
        if raw["path"] == path
    ]
    assert [raw["nid"] for raw in listed] == [second.json()["nid"], first.json()["nid"]]

    nid = first.json()["nid"]
    assert runtime.get(f"/raw-events/{nid}", params=window(), headers=headers).json() == first.json()
    assert runtime.get(f"/raw-events/{nid}", headers=headers).status_code == 400  # from and to are required
    assert runtime.get("/raw-events/abc", params=window(), headers=headers).status_code == 400
    assert runtime.get("/raw-events/999999999", params=window(), headers=headers).status_code == 404
    old = {"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}
    assert runtime.get(f"/raw-events/{nid}", params=old, headers=headers).status_code == 404

    for body in ({"payload": {}}, {"path": path, "payload": [1]}, {"path": path, "payload": {}, "headers": {"a": 1}}):
        assert runtime.post("/raw-events", json=body, headers=headers).status_code == 400
    assert runtime.get("/raw-events", params={"limit": "1001"}, headers=headers).status_code == 400


def test_mapping_crud_sorted_by_path(runtime, headers, unique):
    paths = sorted([unique("/m/b"), unique("/m/a")])
    for path in reversed(paths):
        created = runtime.post("/mappings", json=github_mapping(path), headers=headers)
        assert created.status_code == 201 and created.json()["path"] == path
    assert runtime.post("/mappings", json=github_mapping(paths[0]), headers=headers).status_code == 409
    listed = [mapping["path"] for mapping in runtime.get("/mappings", headers=headers).json()]
    assert [path for path in listed if path in paths] == paths and listed == sorted(listed)

    assert runtime.get("/mapping", params={"path": paths[0]}, headers=headers).json()["version"] == 2
    updated = runtime.put(
        "/mapping", params={"path": paths[0]}, json=github_mapping("/ignored", version=3), headers=headers
    )
    assert updated.status_code == 200 and updated.json()["path"] == paths[0] and updated.json()["version"] == 3
    assert (
        runtime.put("/mapping", params={"path": unique("/none")}, json=github_mapping("x"), headers=headers).status_code
        == 404
    )
    assert runtime.get("/mapping", headers=headers).status_code == 400
    assert runtime.delete("/mapping", params={"path": paths[1]}, headers=headers).status_code == 200
    assert runtime.get("/mapping", params={"path": paths[1]}, headers=headers).status_code == 404
    assert runtime.delete("/mapping", params={"path": paths[1]}, headers=headers).status_code == 404

    for change, param in (
        ({"eventTypeField": ""}, "eventType"),
        ({"aggregateIDField": ""}, "aggregateIDField"),
        ({"aggregateType": ""}, "aggregateType"),
        ({"version": -1}, "version"),
        ({"metadataMapping": {"a": 1}}, "metadataMapping"),
        ({"path": ""}, "path"),
    ):
        response = runtime.post("/mappings", json={**github_mapping(unique("/bad")), **change}, headers=headers)
        assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_ingest_maps_payload_and_headers_into_an_event(runtime, headers, unique):
    path = unique("/github")
    assert runtime.post("/mappings", json=github_mapping(path), headers=headers).status_code == 201
    payload = {"repository": {"id": 42}, "sender": {"login": "octo"}, "commits": [{"id": "c1"}]}
    webhook = {**headers, "X-GitHub-Event": unique("pull_request"), "X-GitHub-Delivery": "d-1"}
    response = runtime.post("/ingest", params={"path": path}, json=payload, headers=webhook)
    assert response.status_code == 201, response.text
    event = response.json()
    assert event["event_type"] == webhook["X-GitHub-Event"] and event["event_source"] == "github.com"
    assert event["aggregate_type"] == "github.repository" and event["aggregate_id"] == "42" and event["version"] == 2
    assert event["data"] == payload
    assert event["metadata"] == {"delivery": "d-1", "sender": "octo", "first_commit": "c1"}

    raw = next(raw for raw in runtime.get("/raw-events", headers=headers).json() if raw["path"] == path)
    assert raw["payload"] == payload
    kept = {name.lower(): value for name, value in raw["headers"].items()}
    assert kept["x-github-delivery"] == "d-1" and "x-api-key" not in kept  # webhook headers kept, credentials not
    stored = runtime.get("/events/type", params={"event_type": event["event_type"]}, headers=headers).json()
    assert [item["id"] for item in stored] == [event["id"]]


def test_ingest_rejections_write_nothing(runtime, headers, unique):
    path = unique("/github")
    runtime.post("/mappings", json=github_mapping(path), headers=headers)
    assert runtime.post("/ingest", json={"a": 1}, headers=headers).status_code == 400  # no path
    assert runtime.post("/ingest", params={"path": unique("/none")}, json={"a": 1}, headers=headers).status_code == 404
    assert runtime.post("/ingest", params={"path": path}, json=[1, 2], headers=headers).status_code == 400
    misfit = runtime.post(
        "/ingest", params={"path": path}, json={"repository": {}}, headers={**headers, "X-GitHub-Event": "push"}
    )
    assert misfit.status_code == 400 and misfit.json()["error"]["param"] == "aggregate_id"
    assert all(
        raw["path"] != path for raw in runtime.get("/raw-events", params={"limit": "1000"}, headers=headers).json()
    )


def test_replay_applies_the_current_mapping(runtime, headers, unique):
    path, event_type, replayed_type = unique("/orders"), unique("order.v1"), unique("order.v2")
    mapping = {
        "path": path,
        "eventType": event_type,
        "aggregateType": "order",
        "aggregateIDField": "order.id",
        "version": 1,
        "metadataMapping": {},
    }
    runtime.post("/mappings", json=mapping, headers=headers)
    runtime.post("/ingest", params={"path": path}, json={"order": {"id": "o-9"}}, headers=headers)
    nid = next(raw["nid"] for raw in runtime.get("/raw-events", headers=headers).json() if raw["path"] == path)

    runtime.put("/mapping", params={"path": path}, json={**mapping, "eventType": replayed_type}, headers=headers)
    replayed = runtime.post("/replay", params={"nid": str(nid), **window()}, headers=headers)
    assert replayed.status_code == 202 and replayed.json() == "event replayed"
    events = runtime.get("/events/type", params={"event_type": replayed_type}, headers=headers).json()
    assert [event["aggregate_id"] for event in events] == ["o-9"]
    assert runtime.post("/replay", params={"nid": str(nid)}, headers=headers).status_code == 400
    assert runtime.post("/replay", params=window(), headers=headers).status_code == 400
    assert runtime.post("/replay", params={"nid": "999999999", **window()}, headers=headers).status_code == 404


def test_sync_reloads_the_mapping_cache(runtime, headers, unique):
    from aiplane.events import mappings

    path = unique("/cached")
    runtime.post(
        "/mappings",
        json={"path": path, "eventType": "a", "aggregateType": "x", "aggregateIDField": "id"},
        headers=headers,
    )
    mappings.cached_mapping(path)
    # Another process changes the mapping behind this one's cache; /sync makes it visible at once.
    from aiplane.events.models import MappingRecord

    record = MappingRecord.get(f"MAPPING#{path}", "META")
    record.update(actions=[MappingRecord.body.set(record.body.replace('"eventType": "a"', '"eventType": "b"'))])
    assert mappings.cached_mapping(path)["eventType"] == "a"
    synced = runtime.post("/sync", headers=headers)
    assert synced.status_code == 200 and synced.json().startswith("synced ")
    assert mappings.cached_mapping(path)["eventType"] == "b"
