"""The hash-chained audit log: appends from state-changing calls, queries, verification,
tamper detection (by an insider who writes DynamoDB directly), anchoring in signed digests and
concurrent appends."""

from __future__ import annotations

import base64
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

from aiplane.audit_chain import sequence_key
from aiplane.data.aws import client as aws_client
from aiplane.data.digests import SIGNING_ALGORITHM, canonical_json
from aiplane.mlworker import audit
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.models import AuditEventRecord, AuditHeadRecord
from aiplane.settings import get_settings
from aiplane_local.lambda_runtime import invoke
from aiplane_shared.resources import AUDIT_DIGEST_BUCKET
from tests.integration.mlworker.conftest import AUDIT_EVENT_FIELDS, scheduled_tick


def stored(sequence: int) -> AuditEventRecord:
    """The event as an insider with table access sees it."""
    return AuditEventRecord.get(audit.CHAIN.partition(audit.CHAIN.shard_of(sequence)), sequence_key(sequence))


def stored_head(sequence: int) -> AuditHeadRecord:
    return AuditHeadRecord.get(audit.CHAIN.partition(audit.CHAIN.shard_of(sequence)), "HEAD")


def verify(client, admin) -> dict:
    response = client.post("/v1/audit/verify", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def anchor(client, admin) -> dict:
    response = client.get("/v1/audit/chain-root", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


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
    assert set(listing) == {"events", "total", "limit", "offset", "next_cursor"} and listing["total"] == 4
    chain = listing["events"]
    assert all(AUDIT_EVENT_FIELDS <= set(event) for event in chain)
    assert [(e["event_type"], e["action"]) for e in chain] == [
        ("job_queued", "submit"),
        ("job_queued", "change_priority"),
        ("job_completed", "cancel"),
        ("plugin_configured", "update_config"),
    ]
    assert [e["sequence_num"] for e in chain] == [1, 2, 3, 4]
    # Each event links to its shard's previous event (sequence - shards); a shard's first to genesis.
    by_sequence = {e["sequence_num"]: e for e in chain}
    for event in chain:
        previous = by_sequence.get(event["sequence_num"] - audit.CHAIN.shards)
        assert event["prev_hash"] == (previous["event_hash"] if previous else "0" * 64)
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
    result = verify(client, admin)
    assert {"valid", "total_events", "chain_root_hash", "verified_at"} <= set(result)
    assert result["valid"] is True and result["total_events"] == 2 and "first_tampered" not in result
    assert result["anchored_sequence"] == 0  # nothing anchored yet: only the links and the heads
    root = anchor(client, admin)
    assert {"root_hash", "timestamp", "total_events"} <= set(root) and root["total_events"] == 3
    assert root["sequence_num"] == 3
    verified = events(client, admin, event_type="audit_verified")["events"][0]
    assert {"shard": audit.CHAIN.shard_of(3), "sequence_num": 3, "event_hash": verified["event_hash"]} in root["heads"]
    again = verify(client, admin)
    assert again["valid"] is True and again["anchored_sequence"] == 3 and again["digests_checked"] == 1


def test_empty_chain(client, admin):
    root = anchor(client, admin)
    assert root["root_hash"] == "0" * 64 and root["total_events"] == 0 and root["heads"] == []
    assert verify(client, admin)["valid"] is True


def test_a_tampered_record_is_detected_at_its_sequence_number(client, admin, submit):
    for name in ("a", "b", "c", "d"):
        submit(name)
    stored(3).update(actions=[AuditEventRecord.user_id.set("someone-else")])
    result = client.post("/v1/audit/verify", headers=admin).json()
    assert result["valid"] is False and result["first_tampered"] == 3 and result["total_events"] == 4
    recorded = events(client, admin, event_type="audit_verified")["events"][0]
    assert recorded["success"] is False and recorded["metadata"]["first_tampered"] == 3


def test_a_rehashed_forgery_still_breaks_the_next_link_or_the_head(client, admin, submit):
    for name in range(audit.CHAIN.shards + 2):  # event 2's shard also holds 2 + shards
        submit(f"t{name}")
    forged = stored(2)
    forged.action = "nothing-to-see"
    forged.event_hash = audit.event_hash(forged)  # consistent by itself, but its successor links to the old hash
    forged.save()
    result = verify(client, admin)
    assert result["valid"] is False and result["first_tampered"] == 2 + audit.CHAIN.shards


def test_a_rehashed_forgery_of_a_shards_newest_event_breaks_its_head(client, admin, submit):
    for name in ("a", "b", "c"):
        submit(name)
    newest = stored(3)  # the newest of its shard: the head still names the old hash
    newest.action = "nothing-to-see"
    newest.event_hash = audit.event_hash(newest)
    newest.save()
    assert verify(client, admin)["first_tampered"] == 3


def test_a_deleted_record_is_detected(client, admin, submit):
    for name in ("a", "b", "c"):
        submit(name)
    stored(2).delete()
    assert client.post("/v1/audit/verify", headers=admin).json()["first_tampered"] == 2
    stored(3).delete()
    result = client.post("/v1/audit/verify", headers=admin).json()
    assert result["valid"] is False and result["first_tampered"] == 2


def test_truncating_the_newest_events_is_detected_through_the_head(client, admin, submit):
    submit("a")
    submit("b")
    stored(2).delete()
    result = client.post("/v1/audit/verify", headers=admin).json()
    assert result["valid"] is False and result["first_tampered"] == 2


def test_concurrent_appends_never_fork_the_chain(client, admin):
    def append(index: int) -> int:
        return int(audit.append_event("file_access", Actor(user_id=f"u{index}"), resource=f"file/{index}").sequence_num)

    with ThreadPoolExecutor(8) as pool:
        sequences = sorted(pool.map(append, range(24)))
    assert len(set(sequences)) == 24  # unique; shards under contention may leave gaps in the numbering
    shards = {audit.CHAIN.shard_of(sequence) for sequence in sequences}
    assert len(shards) > 1  # the writers spread over shards instead of queueing on one head
    anchor(client, admin)
    result = verify(client, admin)
    assert result["valid"] is True and result["total_events"] == 24


def test_sequential_appends_number_1_2_3_across_shards(client, admin, submit):
    for name in ("a", "b", "c"):
        submit(name)
    assert [e["sequence_num"] for e in events(client, admin)["events"]] == [1, 2, 3]
    assert len({stored(sequence).pk for sequence in (1, 2, 3)}) == 3


# An insider with write access to the table, after the chain was anchored in a signed digest.


def test_chain_root_signs_the_heads_and_each_digest_names_the_previous(client, admin, submit):
    submit("a")
    first = anchor(client, admin)
    submit("b")
    second = anchor(client, admin)
    assert second["previous_digest"] == first["digest_key"] and first["previous_digest"] is None
    assert second["sequence_num"] == 2 and second["total_events"] == 2
    kms = aws_client("kms")
    checked = kms.verify(
        KeyId=second["key_id"],
        Message=bytes.fromhex(second["signed_digest_sha256"]),
        MessageType="DIGEST",
        Signature=base64.b64decode(second["signature"]),
        SigningAlgorithm=SIGNING_ALGORITHM,
    )
    assert checked["SignatureValid"] is True
    bucket = get_settings().bucket(AUDIT_DIGEST_BUCKET.name)
    digest = json.loads(aws_client("s3").get_object(Bucket=bucket, Key=second["digest_key"])["Body"].read())["digest"]
    assert hashlib.sha256(canonical_json(digest)).hexdigest() == second["signed_digest_sha256"]
    assert digest["events"] == {"2": events(client, admin)["events"][1]["event_hash"]}  # what was new since the first
    assert aws_client("s3").head_object(Bucket=bucket, Key=second["digest_key"])["ObjectLockMode"] == "COMPLIANCE"


def test_a_rewritten_and_fully_rehashed_chain_is_caught_by_the_digest(client, admin, submit):
    for name in ("a", "b", "c", "d"):
        submit(name)
    anchor(client, admin)
    # Edit event 2, then rehash it and every later event and the heads, as an insider would.
    prev_hash = stored(1).event_hash
    for sequence in (2, 3, 4):
        event = stored(sequence)
        if sequence == 2:
            event.action = "nothing-to-see"
        event.prev_hash = prev_hash
        event.event_hash = audit.event_hash(event)
        event.save()
        head = stored_head(sequence)
        head.event_hash = event.event_hash
        head.save()
        prev_hash = event.event_hash
    result = verify(client, admin)
    assert result["valid"] is False and result["first_tampered"] == 2


def test_deleting_a_middle_event_before_the_digest_is_caught(client, admin, submit):
    for name in ("a", "b", "c", "d"):
        submit(name)
    anchor(client, admin)
    stored(2).delete()
    result = verify(client, admin)
    assert result["valid"] is False and result["first_tampered"] == 2


def test_truncating_the_newest_events_and_their_heads_is_caught_by_the_digest(client, admin, submit):
    for name in ("a", "b", "c", "d", "e"):
        submit(name)
    anchor(client, admin)
    for sequence in (4, 5):  # drop the newest events and the heads that name them
        stored(sequence).delete()
        stored_head(sequence).delete()
    result = verify(client, admin)
    assert result["valid"] is False and result["first_tampered"] == 4


def test_wiping_the_log_before_the_digest_is_caught(client, admin, submit):
    for name in ("a", "b", "c"):
        submit(name)
    anchor(client, admin)
    for sequence in (1, 2, 3):
        stored(sequence).delete()
        stored_head(sequence).delete()
    result = verify(client, admin)
    assert result["valid"] is False and result["first_tampered"] == 1
    submit("fresh-start")  # a new chain from genesis does not match what was anchored
    result = verify(client, admin)
    assert result["valid"] is False and result["first_tampered"] == 1


def test_a_forged_digest_is_refused(client, admin, submit):
    submit("a")
    real = anchor(client, admin)
    bucket = get_settings().bucket(AUDIT_DIGEST_BUCKET.name)
    forged = json.loads(aws_client("s3").get_object(Bucket=bucket, Key=real["digest_key"])["Body"].read())
    forged["digest"]["events"] = {}
    newer_key = f"{audit.CHAIN.digest_key_prefix}/0000000000000-forged.json"
    aws_client("s3").put_object(Bucket=bucket, Key=newer_key, Body=canonical_json(forged), ChecksumAlgorithm="SHA256")
    result = verify(client, admin)
    assert result["valid"] is False and "signature" in result["problem"]


def test_events_after_the_newest_digest_are_still_chained(client, admin, submit):
    submit("a")
    anchor(client, admin)
    submit("b")
    submit("c")
    stored(2).update(actions=[AuditEventRecord.action.set("edited")])
    result = verify(client, admin)
    assert result["valid"] is False and result["first_tampered"] == 2 and result["anchored_sequence"] == 1


def test_the_scheduled_tick_anchors_the_chain(client, admin, submit):
    submit("a")
    assert invoke("audit_digests", scheduled_tick()) == {"batchItemFailures": []}
    result = verify(client, admin)
    assert result["valid"] is True and result["anchored_sequence"] == 1 and result["digests_checked"] == 1
    stored(1).delete()
    assert verify(client, admin)["first_tampered"] == 1
