"""/functions and /event-triggers: CRUD per the inventory (sections R and S), validation, order,
cursors, the path name winning over the body's, and the literal sub-routes."""

from __future__ import annotations

import time

FUNCTION_FIELDS = {"name", "description", "scriptType", "script", "createdAt", "updatedAt"}
TRIGGER_FIELDS = {"name", "description", "listenFor", "type", "function", "createdAt", "updatedAt"}


def make_function(runtime, headers, name, script="event.data"):
    response = runtime.post(
        "/functions", json={"name": name, "description": "d", "scriptType": "goja", "script": script}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_function_crud(runtime, headers, unique):
    name = unique("fn")
    created = make_function(runtime, headers, name)
    assert set(created) == FUNCTION_FIELDS and created["scriptType"] == "goja"
    assert runtime.get(f"/functions/{name}", headers=headers).json() == created
    assert runtime.post("/functions", json={"name": name, "script": "1"}, headers=headers).status_code == 409

    updated = runtime.put(
        f"/functions/{name}", json={"name": "ignored", "script": "2", "description": "v2"}, headers=headers
    )
    assert updated.status_code == 200
    assert (
        updated.json()["name"] == name
        and updated.json()["script"] == "2"
        and updated.json()["createdAt"] == created["createdAt"]
    )
    assert runtime.get("/functions/ignored", headers=headers).status_code == 404

    deleted = runtime.delete(f"/functions/{name}", headers=headers)
    assert deleted.status_code == 200 and isinstance(deleted.json(), str)
    assert runtime.get(f"/functions/{name}", headers=headers).status_code == 404
    assert runtime.delete(f"/functions/{name}", headers=headers).status_code == 404
    assert runtime.put(f"/functions/{name}", json={"script": "1"}, headers=headers).status_code == 404


def test_function_validation(runtime, headers, unique):
    bad_bodies = [
        ({"script": "1"}, "name"),
        ({"name": unique("fn")}, "script"),
        ({"name": "has space", "script": "1"}, "name"),
        ({"name": unique("fn"), "script": "1", "scriptType": "python"}, "scriptType"),
        ({"name": unique("fn"), "script": "var x = ("}, "script"),
    ]
    for body, param in bad_bodies:
        response = runtime.post("/functions", json=body, headers=headers)
        assert response.status_code == 400, body
        assert response.json()["error"]["param"] == param
    assert runtime.post("/functions", headers=headers).status_code == 400


def test_functions_list_oldest_first_with_a_timestamp_cursor(runtime, headers, unique):
    names = [unique("fn") for _ in range(3)]
    for name in names:
        make_function(runtime, headers, name)
        time.sleep(0.002)
    listed = runtime.get("/functions", params={"limit": "1000"}, headers=headers).json()
    ours = [item for item in listed if item["name"] in names]
    assert [item["name"] for item in ours] == names
    after_first = runtime.get(
        "/functions", params={"cursor": ours[0]["createdAt"], "limit": "1000"}, headers=headers
    ).json()
    assert [item["name"] for item in after_first if item["name"] in names] == names[1:]
    assert runtime.get("/functions", params={"limit": "0"}, headers=headers).status_code == 400
    assert runtime.get("/functions", params={"cursor": "yesterday"}, headers=headers).status_code == 400


def test_trigger_crud_and_lookups(runtime, headers, unique):
    function = unique("fn")
    make_function(runtime, headers, function)
    name, event_type = unique("trigger"), unique("type")
    body = {
        "name": name,
        "description": "d",
        "listenFor": {"type": event_type},
        "type": "function",
        "function": function,
    }
    created = runtime.post("/event-triggers", json=body, headers=headers)
    assert created.status_code == 201 and set(created.json()) == TRIGGER_FIELDS
    assert runtime.post("/event-triggers", json=body, headers=headers).status_code == 409
    assert runtime.get(f"/event-triggers/{name}", headers=headers).json()["listenFor"] == {"type": event_type}

    by_type = runtime.get(f"/event-triggers/event-type/{event_type}", headers=headers)
    assert by_type.status_code == 200 and [t["name"] for t in by_type.json()] == [name]
    by_function = runtime.get(f"/event-triggers/function/{function}", headers=headers)
    assert [t["name"] for t in by_function.json()] == [name]
    assert runtime.get("/event-triggers/event-type/nothing-listens", headers=headers).json() == []
    assert name in [t["name"] for t in runtime.get("/event-triggers", params={"limit": "1000"}, headers=headers).json()]

    moved = runtime.put(
        f"/event-triggers/{name}", json={**body, "name": "other", "listenFor": {"type": "moved"}}, headers=headers
    )
    assert moved.status_code == 200 and moved.json()["name"] == name and moved.json()["listenFor"]["type"] == "moved"
    assert runtime.get(f"/event-triggers/event-type/{event_type}", headers=headers).json() == []

    assert runtime.delete(f"/event-triggers/{name}", headers=headers).status_code == 200
    assert runtime.get(f"/event-triggers/{name}", headers=headers).status_code == 404
    assert runtime.delete(f"/event-triggers/{name}", headers=headers).status_code == 404


def test_trigger_validation(runtime, headers, unique):
    base = {"name": unique("trigger"), "listenFor": {"type": "t"}, "type": "function", "function": "f"}
    for change, param in (
        ({"listenFor": {}}, "listenFor"),
        ({"type": "webhook"}, "type"),
        ({"function": ""}, "function"),
        ({"name": ""}, "name"),
    ):
        response = runtime.post("/event-triggers", json={**base, **change}, headers=headers)
        assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_a_user_without_grants_is_refused(family_clients, unique):
    from tests.integration.identity.conftest import STRONG_PASSWORD, client_from, fresh_source

    client = client_from("runtime", fresh_source())
    registered = client.post("/register", json={"email": f"{unique('u')}@example.com", "password": STRONG_PASSWORD})
    assert registered.status_code == 201, registered.text
    bearer = {"Authorization": f"Bearer {registered.json()['token']}"}
    for method, path in (("GET", "/functions"), ("GET", "/events/types"), ("GET", "/jobs/pending")):
        response = client.request(method, path, headers=bearer)
        assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error"
