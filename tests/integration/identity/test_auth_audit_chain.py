"""The authentication log is the same anchored hash chain as mlworker's audit log: an insider who
writes the identity table directly cannot edit, rehash, delete or wipe auth events before the last
digest unnoticed; events that TTL removed past retention are no tampering."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from aiplane import audit_anchor, audit_chain
from aiplane.audit_chain import sequence_key
from aiplane.identity import audit
from aiplane.identity.audit import FAILURE, record_auth_event
from aiplane.identity.models import AuthChainHeadRecord, AuthEventRecord


@pytest.fixture
def chain(monkeypatch):
    """The auth chain in partitions and digests of its own: the identity table is shared by the
    session, and earlier tests' digests stay locked in S3."""
    run = uuid.uuid4().hex
    fresh = audit.CHAIN._replace(partition_prefix=f"AUTHCHAIN-{run}#", digest_prefix=f"test-{run}")
    monkeypatch.setattr(audit, "CHAIN", fresh)
    return fresh


def events_of(email: str) -> list[AuthEventRecord]:
    found = []
    for shard in range(audit.CHAIN.shards):
        found += [
            e
            for e in AuthEventRecord.query(audit.CHAIN.partition(shard), AuthEventRecord.sk.startswith("SEQ#"))
            if e.email == email
        ]
    return sorted(found, key=lambda event: int(event.sequence_num))


def record(email: str, count: int) -> list[AuthEventRecord]:
    for _ in range(count):
        record_auth_event("login", FAILURE, family="runtime", email=email, source_ip="127.0.0.9", reason="test")
    return events_of(email)


def test_auth_events_are_chained_and_anchored(chain):
    email = f"chain-{uuid.uuid4().hex[:8]}@example.com"
    recorded = record(email, 3)
    assert len(recorded) == 3 and all(e.event_hash == audit_chain.entry_hash(chain, e) for e in recorded)
    stored = audit_anchor.anchor(chain)
    assert {str(int(e.sequence_num)) for e in recorded} <= set(stored.digest["events"])
    assert audit_anchor.verify(chain).valid is True


def test_an_edited_and_rehashed_auth_event_is_caught(chain):
    email = f"edit-{uuid.uuid4().hex[:8]}@example.com"
    recorded = record(email, 2)
    audit_anchor.anchor(chain)
    forged = recorded[0]
    forged.outcome = "success"
    forged.event_hash = audit_chain.entry_hash(chain, forged)
    forged.save()
    checked = audit_anchor.verify(chain)
    assert checked.valid is False and checked.first_tampered == int(forged.sequence_num)


def test_deleted_auth_events_and_heads_are_caught(chain):
    email = f"gone-{uuid.uuid4().hex[:8]}@example.com"
    recorded = record(email, 2)
    audit_anchor.anchor(chain)
    newest = recorded[-1]
    newest.delete()
    shard = chain.shard_of(int(newest.sequence_num))
    head = AuthChainHeadRecord.get(chain.partition(shard), "HEAD")
    if int(head.sequence_num) == int(newest.sequence_num):  # hide the truncation from the head too
        head.delete()
    checked = audit_anchor.verify(chain)
    assert checked.valid is False and checked.first_tampered == int(newest.sequence_num)


def test_events_removed_after_retention_are_not_tampering(chain):
    email = f"old-{uuid.uuid4().hex[:8]}@example.com"
    oldest = record(email, 1)[0]
    audit_anchor.anchor(chain)
    shard = chain.shard_of(int(oldest.sequence_num))
    # TTL removes this shard's oldest events (here: everything up to ours, as an old prefix).
    oldest_keys = AuthEventRecord.sk.between(sequence_key(0), sequence_key(int(oldest.sequence_num)))
    for event in AuthEventRecord.query(chain.partition(shard), oldest_keys):
        event.delete()
    assert audit_anchor.verify(chain).first_tampered == chain.first_sequence(shard)  # today: tampering
    later = datetime.now(UTC) + audit.RETENTION + timedelta(days=1)
    assert audit_anchor.verify(chain, now=later).valid is True  # past retention: expired
