"""Anchoring and verifying the audit chains of `aiplane.audit_chain`: signed digests of the
heads in an Object Lock bucket (`aiplane.data.digests`), and the walk that checks a chain
against them. Apart from appending, which needs neither the signing key nor the bucket."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from aiplane.audit_chain import (
    GENESIS_HASH,
    SEQUENCE_PREFIX,
    Chain,
    canonical_json,
    entry_hash,
    heads,
    newest_sequence,
    now_iso,
    root_hash,
    sequence_key,
    total_appended,
)
from aiplane.data import digests
from aiplane.data.digests import StoredDigest


def anchor(chain: Chain) -> StoredDigest:
    """Sign and store a digest of the chain's heads and of every entry since the previous digest."""
    previous_key = digests.newest_digest_key(chain.digest_key_prefix)
    previous = digests.get_digest(previous_key) if previous_key else None
    since = {int(head["shard"]): int(head["sequence_num"]) for head in previous.digest["heads"]} if previous else {}
    current = heads(chain)
    anchored: dict[str, str] = {}
    for shard, head in current.items():
        low = since.get(shard, 0) + 1
        for entry in chain.entry.query(
            chain.partition(shard),
            chain.entry.sk.between(sequence_key(low), sequence_key(int(head.sequence_num))),
            consistent_read=True,
        ):
            anchored[str(int(entry.sequence_num))] = entry.event_hash
    digest = {
        "chain": chain.name,
        "digest_time": now_iso(),
        "shards": chain.shards,
        "sequence_num": newest_sequence(current),
        "total_events": total_appended(chain, current),
        "root_hash": root_hash(chain, current),
        "heads": [
            {"shard": shard, "sequence_num": int(head.sequence_num), "event_hash": head.event_hash}
            for shard, head in sorted(current.items())
        ],
        "events": anchored,
        "previous_digest": {"key": previous.key, "sha256": previous.sha256, "signature": previous.signature}
        if previous
        else None,
    }
    return digests.put_digest(chain.digest_key_prefix, digest)


@dataclass(frozen=True)
class Verification:
    valid: bool
    first_tampered: int | None
    total_events: int  # entries stored now
    root_hash: str  # over the heads stored now
    newest_digest: StoredDigest | None
    digests_checked: int
    problem: str | None  # what does not hold, in words


@dataclass
class _Anchors:
    hashes: dict[int, tuple[str, datetime]]  # sequence -> (anchored hash, when the digest was written)
    highest: dict[int, int]  # shard -> the highest sequence any digest anchored
    newest: StoredDigest | None = None
    checked: int = 0
    problem: str | None = None


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _walk_digests(chain: Chain) -> _Anchors:
    """Every digest from the newest back to the first: signature, link, and what each anchored."""
    anchors = _Anchors(hashes={}, highest={})
    key = digests.newest_digest_key(chain.digest_key_prefix)
    named_sha256 = None
    key_arn = digests.signing_key_arn() if key else ""
    while key:
        try:
            stored = digests.get_digest(key)
        except (ValueError, ClientError) as error:
            anchors.problem = f"digest {key} cannot be read: {error}"
            return anchors
        if named_sha256 is not None and stored.sha256 != named_sha256:
            anchors.problem = f"digest {key} is not the one its successor names"
            return anchors
        if not digests.signature_holds(stored, key_arn) or stored.digest.get("chain") != chain.name:
            anchors.problem = f"digest {key} does not carry a valid signature for this chain"
            return anchors
        anchors.newest = anchors.newest or stored
        anchors.checked += 1
        written = _parse_time(stored.digest["digest_time"])
        for sequence, anchored_hash in stored.digest["events"].items():
            anchors.hashes[int(sequence)] = (anchored_hash, written)
        for head in stored.digest["heads"]:
            shard = int(head["shard"])
            anchors.highest[shard] = max(anchors.highest.get(shard, 0), int(head["sequence_num"]))
        previous = stored.digest.get("previous_digest")
        key, named_sha256 = (previous["key"], previous["sha256"]) if previous else (None, None)
    return anchors


def _first_bad_in_shard(
    chain: Chain, shard: int, entries: list[Any], head: Any, anchors: _Anchors, now: datetime
) -> int | None:
    expected, prev = chain.first_sequence(shard), GENESIS_HASH
    hashes = {int(entry.sequence_num): entry.event_hash for entry in entries}
    if chain.retention is not None:
        # TTL removed the oldest entries: fine where a digest anchored each of them past retention.
        oldest_stored = int(entries[0].sequence_num) if entries else None
        while oldest_stored is None or expected < oldest_stored:
            anchored = anchors.hashes.get(expected)
            if anchored is None or anchored[1] + chain.retention > now:
                break
            prev, expected = anchored[0], expected + chain.shards
    for entry in entries:
        sequence = int(entry.sequence_num)
        if sequence != expected or entry.sk != sequence_key(sequence):
            return min(sequence, expected)  # `expected` is missing
        if entry.prev_hash != prev or entry_hash(chain, entry) != entry.event_hash:
            return sequence
        anchored = anchors.hashes.get(sequence)
        if anchored is not None and anchored[0] != entry.event_hash:
            return sequence  # rewritten and rehashed: only the digest still knows the original
        prev, expected = entry.event_hash, sequence + chain.shards
    if expected <= anchors.highest.get(shard, 0):
        return expected  # entries a digest anchored are gone (truncated or wiped)
    if head is None:
        return None
    # The head was read before the entries, so every entry it names was already written.
    if int(head.sequence_num) >= expected:
        return expected  # the head knows newer entries than the table holds: truncated
    named = int(head.sequence_num)
    if (prev if named == expected - chain.shards else hashes.get(named)) != head.event_hash:
        return named
    return None  # entries past the head are appends newer than the head read (or not yet moved on)


def verify(chain: Chain, now: datetime | None = None) -> Verification:
    now = now or datetime.now(UTC)
    anchors = _walk_digests(chain)
    current = heads(chain)
    first_tampered, total = None, 0
    for shard in range(chain.shards):
        entries = list(
            chain.entry.query(chain.partition(shard), chain.entry.sk.startswith(SEQUENCE_PREFIX), consistent_read=True)
        )
        total += len(entries)
        bad = _first_bad_in_shard(chain, shard, entries, current.get(shard), anchors, now)
        if bad is not None and (first_tampered is None or bad < first_tampered):
            first_tampered = bad
    problem = anchors.problem
    if problem is None and first_tampered is not None:
        problem = f"entry {first_tampered} does not hold"
    return Verification(
        valid=problem is None,
        first_tampered=first_tampered,
        total_events=total,
        root_hash=root_hash(chain, current),
        newest_digest=anchors.newest,
        digests_checked=anchors.checked,
        problem=problem,
    )


def signed_head(stored: StoredDigest) -> dict[str, Any]:
    """A digest as an API answers it: the signed head and what a client needs to check it."""
    digest = stored.digest
    return {
        "root_hash": digest["root_hash"],
        "timestamp": digest["digest_time"],
        "total_events": digest["total_events"],
        "sequence_num": digest["sequence_num"],
        "heads": digest["heads"],
        "digest_key": stored.key,
        "signature": stored.signature,
        "key_id": stored.key_id,
        "signing_algorithm": stored.signing_algorithm,
        "signed_digest_sha256": hashlib.sha256(canonical_json(digest)).hexdigest(),
        "previous_digest": digest["previous_digest"]["key"] if digest["previous_digest"] else None,
    }
