"""/activity/* (tracked requests, chain runs, alerts) and /system/*, /executor/sync."""

from __future__ import annotations

import uuid

from aiplane.data import aws
from aiplane.settings import get_settings
from aiplane.system.services import EXECUTOR_SYNC_ANSWER
from aiplane_shared import resources
from tests.integration.runtime_files.test_files import assert_error, upload

REQUEST_FIELDS = {
    "id",
    "operation",
    "subject",
    "principalId",
    "method",
    "path",
    "status",
    "error",
    "startedAt",
    "endedAt",
    "durationMs",
    "metadata",
}


def test_writes_are_tracked_as_requests_and_operations(runtime, folder):
    request_id = str(uuid.uuid4())
    created = runtime.post(
        "/files",
        files={"file": ("a.txt", b"x", "text/plain")},
        data={"parentid": folder["id"]},
        headers={"X-Request-Id": request_id},
    )
    assert created.status_code == 201
    tracked = runtime.get(f"/activity/requests/{request_id}")
    assert tracked.status_code == 200, tracked.text
    body = tracked.json()
    assert set(body) == REQUEST_FIELDS
    assert (body["operation"], body["subject"], body["method"], body["path"], body["status"], body["error"]) == (
        "upload",
        "files",
        "POST",
        "/files",
        201,
        None,
    )
    assert body["principalId"] and body["durationMs"] >= 0
    assert request_id in [item["id"] for item in runtime.get("/activity/requests", params={"limit": "50"}).json()]
    operations = {(item["operation"], item["subject"]): item for item in runtime.get("/activity/operations").json()}
    assert operations[("upload", "files")]["count"] >= 1
    by_operation = runtime.get("/activity/operations/upload/files").json()
    assert by_operation[0]["id"] == request_id
    assert runtime.get(f"/activity/requests/{request_id}/state").json() == []


def test_refused_requests_are_tracked_with_their_error(runtime, folder):
    request_id = str(uuid.uuid4())
    upload(runtime, "dup.txt", b"x", folder["id"])
    refused = runtime.post(
        "/files",
        files={"file": ("dup.txt", b"y", "text/plain")},
        data={"parentid": folder["id"]},
        headers={"X-Request-Id": request_id},
    )
    assert refused.status_code == 409
    body = runtime.get(f"/activity/requests/{request_id}").json()
    assert body["status"] == 409 and "already exists" in body["error"]
    invalid_id = str(uuid.uuid4())
    assert runtime.post("/folders", json={}, headers={"X-Request-Id": invalid_id}).status_code == 400
    assert runtime.get(f"/activity/requests/{invalid_id}").json()["status"] == 400


def test_reads_of_metadata_are_not_tracked(runtime):
    request_id = str(uuid.uuid4())
    assert runtime.get("/files", headers={"X-Request-Id": request_id}).status_code == 200
    assert_error(runtime.get(f"/activity/requests/{request_id}"), 404)
    assert_error(runtime.get(f"/activity/requests/{request_id}/state"), 404)


def test_chain_runs_are_stateful_requests(runtime):
    tasks = [{"id": "only", "handler": "noop", "transition": {"branches": [{"operator": "default", "goto": "end"}]}}]
    response = runtime.post("/tasks", json={"input": "hi", "inputType": "string", "chain": {"id": "t", "tasks": tasks}})
    assert response.status_code == 200, response.text
    runs = runtime.get("/activity/stateful-requests").json()
    assert runs and set(runs[0]) == {"id", "steps", "startedAt"} and runs[0]["steps"] >= 1
    state = runtime.get(f"/activity/requests/{runs[0]['id']}/state")
    assert state.status_code == 200 and state.json()[0]["taskID"] == "only"


def test_failed_authentications_are_alerts(runtime, family_clients):
    anonymous = family_clients["runtime"]
    assert anonymous.get("/files", headers={"X-API-Key": "wrong-key-" + uuid.uuid4().hex}).status_code == 401
    alerts = runtime.get("/activity/alerts").json()
    assert alerts and alerts[0]["source"] == "auth"
    assert set(alerts[0]) == {"id", "source", "message", "requestId", "metadata", "timestamp"}
    assert len(runtime.get("/activity/alerts", params={"limit": "1"}).json()) == 1
    assert_error(runtime.get("/activity/alerts", params={"limit": "x"}), 400)


def test_system_resources_and_services(runtime):
    assert runtime.get("/system/resources").json() == ["system", "files", "blobs", "chunks"]
    services = runtime.get("/system/services").json()
    names = {(item["kind"], item["name"]) for item in services}
    assert ("table", "runtime") in names and ("queue", "gateway-sync") in names
    assert ("event-bus", "events") in names and ("bucket", "artifacts") in names
    table = next(item for item in services if item["name"] == "runtime")
    assert table["status"] == "ok" and table["details"]["tableStatus"] == "ACTIVE"
    queue = next(item for item in services if item["name"] == "gateway-sync")
    assert set(queue["details"]) == {"visible", "inFlight", "deadLetters"}


def test_a_message_in_a_dead_letter_queue_degrades_its_queue(runtime):
    sqs = aws.client("sqs")
    queue = resources.PROVISIONING_QUEUE  # no consumer drains its DLQ in the local stack
    url = sqs.get_queue_url(QueueName=get_settings().resource(queue.dlq_name))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    try:
        status = next(item for item in runtime.get("/system/services").json() if item["name"] == queue.name)
        assert status["status"] == "degraded" and status["details"]["deadLetters"] >= 1
    finally:
        sqs.purge_queue(QueueUrl=url)


def test_executor_sync_answers_that_nothing_needs_refreshing_and_a_saved_function_applies_at_once(runtime):
    """The executor caches nothing: the answer says so, and a function changed without a sync runs
    its new script on the very next event (so the answer is true)."""
    from aiplane.events import triggers

    name = f"sync-{uuid.uuid4().hex[:8]}"
    event_type = f"{name}.happened"
    assert runtime.post("/functions", json={"name": name, "script": "'old'"}).status_code == 201
    assert (
        runtime.post(
            "/event-triggers", json={"name": name, "listenFor": {"type": event_type}, "function": name}
        ).status_code
        == 201
    )
    event = {"event_type": event_type, "aggregate_type": "t", "aggregate_id": "1", "version": 1, "data": {}}
    first = runtime.post("/events", json=event).json()
    assert triggers.handle_event(first, depth=0)[name].result == "old"
    assert runtime.put(f"/functions/{name}", json={"script": "'new'"}).status_code == 200
    second = runtime.post("/events", json=event).json()
    assert triggers.handle_event(second, depth=0)[name].result == "new"  # no sync in between

    response = runtime.post("/executor/sync")
    assert response.status_code == 200 and response.json() == EXECUTOR_SYNC_ANSWER
    assert response.json().startswith("nothing to refresh")
