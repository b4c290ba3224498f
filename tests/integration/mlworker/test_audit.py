"""The hash-chained audit log: appends from state-changing calls, queries, verification,
tamper detection and concurrent appends."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

from aiplane.mlworker import audit
from aiplane.mlworker.audit import Actor, canonical_json
from aiplane.mlworker.models import AUDIT_PARTITION, AuditEventRecord, audit_sequence_key
from tests.integration.mlworker.conftest import AUDIT_EVENT_FIELDS


def events(client, admin, **params) -> dict:
    response = client.get("/v1/audit/events", headers=admin, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_state_changes_append_linked_events(client, admin, submit):
    task = submit("audited")
    client.patch(f"/v1/scheduler/jobs/{task['id']}/priority", headers=admin, json={"priority": 7})
    client.delete(f"/v1/tasks/{task['id']}", headers=admin)
    client.put("/v1/plugins/tensorboard/config", headers=admin, json={"enabled": True})
    listing = events(client, admin)
    assert set(listing) == {"events", "total", "limit", "offset"} and listing["total"] == 4
    chain = listing["events"]
    assert all(AUDIT_EVENT_FIELDS <= set(event) for event in chain)
    assert [(e["event_type"], e["action"]) for e in chain] == [
        ("job_queued", "submit"), ("job_queued", "change_priority"), ("job_completed", "cancel"),
        ("plugin_configured", "update_config"),
    ]
    assert [e["sequence_num"] for e in chain] == [1, 2, 3, 4]
    assert chain[0]["prev_hash"] == "0" * 64
    assert all(later["prev_hash"] == earlier["event_hash"] for earlier, later in zip(chain, chain[1:]))
    assert chain[0]["user_id"] == "admin" and chain[0]["resource"] == f"task/{task['id']}"


def test_event_hash_is_sha256_over_canonical_json_of_the_event_and_previous_hash(client, admin, submit):
    submit("hashed")
    (event,) = events(client, admin)["events"]
    hashed = {key: value for key, value in event.items() if key != "event_hash"}
    hashed.setdefault("ip_address", None)
    hashed.setdefault("error", None)
    assert hashlib.sha256(canonical_json(hashed)).hexdigest() == event["event_hash"]


def test_filters_and_pagination(client, admin, user_headers, submit):
    submit("by-admin")
    submit("by-user", headers=user_headers)
    client.put("/v1/plugins/jupyter/config", headers=admin, json={"enabled": True, "settings": {"port": 9999}})
    all_events = events(client, admin)["events"]
    user_id = all_events[1]["user_id"]
    assert [e["sequence_num"] for e in events(client, admin, event_type="job_queued")["events"]] == [1, 2]
    assert [e["sequence_num"] for e in events(client, admin, user_id=user_id)["events"]] == [2]
    page = events(client, admin, limit=1, offset=1)
    assert page["total"] == 3 and [e["sequence_num"] for e in page["events"]] == [2]
    last = all_events[2]["timestamp"]
    assert [e["sequence_num"] for e in events(client, admin, **{"from": last})["events"]] == [3]
    assert [e["sequence_num"] for e in events(client, admin, to=all_events[0]["timestamp"])["events"]] == [1]
    for bad in ({"event_type": "nope"}, {"from": "yesterday"}, {"limit": 0}, {"limit": 1001}):
        response = client.get("/v1/audit/events", headers=admin, params=bad)
        assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"


def test_verify_an_intact_chain_and_record_the_verification(client, admin, submit):
    submit("one")
    submit("two")
    result = client.post("/v1/audit/verify", headers=admin).json()
    assert set(result) == {"valid", "total_events", "chain_root_hash", "verified_at"}
    assert result["valid"] is True and result["total_events"] == 2
    assert result["chain_root_hash"] == events(client, admin)["events"][1]["event_hash"]
    root = client.get("/v1/audit/chain-root", headers=admin).json()
    assert set(root) == {"root_hash", "timestamp", "total_events"} and root["total_events"] == 3
    assert events(client, admin, event_type="audit_verified")["events"][0]["event_hash"] == root["root_hash"]


def test_empty_chain(client, admin):
    root = client.get("/v1/audit/chain-root", headers=admin).json()
    assert root["root_hash"] == "0" * 64 and root["total_events"] == 0
    assert client.post("/v1/audit/verify", headers=admin).json()["valid"] is True


def test_a_tampered_record_is_detected_at_its_sequence_number(client, admin, submit):
    for name in ("a", "b", "c", "d"):
        submit(name)
    AuditEventRecord.get(AUDIT_PARTITION, audit_sequence_key(3)).update(
        actions=[AuditEventRecord.user_id.set("someone-else")])
    result = client.post("/v1/audit/verify", headers=admin).json()
    assert result["valid"] is False and result["first_tampered"] == 3 and result["total_events"] == 4
    recorded = events(client, admin, event_type="audit_verified")["events"][0]
    assert recorded["success"] is False and recorded["metadata"]["first_tampered"] == 3


def test_a_rehashed_forgery_still_breaks_the_next_link(client, admin, submit):
    for name in ("a", "b", "c"):
        submit(name)
    forged = AuditEventRecord.get(AUDIT_PARTITION, audit_sequence_key(2))
    forged.action = "nothing-to-see"
    forged.event_hash = audit.event_hash(forged)  # consistent by itself, but event 3 links to the old hash
    forged.save()
    result = client.post("/v1/audit/verify", headers=admin).json()
    assert result["valid"] is False and result["first_tampered"] == 3


def test_a_deleted_record_is_detected(client, admin, submit):
    for name in ("a", "b", "c"):
        submit(name)
    AuditEventRecord.get(AUDIT_PARTITION, audit_sequence_key(2)).delete()
    assert client.post("/v1/audit/verify", headers=admin).json()["first_tampered"] == 2
    AuditEventRecord.get(AUDIT_PARTITION, audit_sequence_key(3)).delete()
    result = client.post("/v1/audit/verify", headers=admin).json()
    assert result["valid"] is False and result["first_tampered"] == 2


def test_truncating_the_newest_events_is_detected_through_the_head(client, admin, submit):
    submit("a")
    submit("b")
    AuditEventRecord.get(AUDIT_PARTITION, audit_sequence_key(2)).delete()
    result = client.post("/v1/audit/verify", headers=admin).json()
    assert result["valid"] is False and result["first_tampered"] == 2


def test_concurrent_appends_never_fork_the_chain(client, admin):
    def append(index: int) -> int:
        return int(audit.append_event("file_access", Actor(user_id=f"u{index}"), resource=f"file/{index}").sequence_num)

    with ThreadPoolExecutor(8) as pool:
        sequences = sorted(pool.map(append, range(24)))
    assert sequences == list(range(1, 25))
    result = client.post("/v1/audit/verify", headers=admin).json()
    assert result["valid"] is True and result["total_events"] == 24
