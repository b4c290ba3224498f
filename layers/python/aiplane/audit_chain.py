"""Tamper-evident logs: sharded SHA-256 hash chains anchored in signed digests outside DynamoDB.

One implementation for every audit log (the mlworker audit log, the authentication log).

Chaining. A chain is `shards` independent hash chains, each in its own partition
(`<partition_prefix><shard>`) with its own head item, so concurrent appends spread over several
items instead of serialising on one. Sequence numbers are still unique and global: shard s holds
s+1, s+1+N, s+1+2N, … (N shards). An append goes to the least-advanced shard, so one writer
numbers 1, 2, 3, …; on a conflict the writer widens the choice (2, 4, … shards). Each entry's hash
covers its content, its sequence number and its shard predecessor's hash. An entry is put on the
condition that its sequence is still free, so no shard forks; the head item then moves forward (it
only points at the newest entry; a writer that finds it stale moves it on). No transaction: an
append is a batch read of the heads and two conditional single-item writes.

Anchoring. A table writer can rewrite a chain and rehash it, so the chain alone proves nothing
against an insider. `anchor` writes a digest, as CloudTrail's digest files do: every shard's head,
the hashes of every entry appended since the previous digest, and the previous digest's key and
SHA-256, signed with a KMS key into an Object Lock (compliance) bucket (`aiplane.data.digests`).

Verification walks the digest chain from the newest digest back to the first (every signature and
every link), then every shard: each entry must link to its predecessor, hash to its stored hash,
match the hash a digest anchored for it, and no anchored entry may be missing. An edit (rehashed
or not), a deleted middle entry, dropped newest entries or a wipe before the last digest are all
reported with the first sequence number that does not hold. Entries after the newest digest are
protected by the chain and the heads only, until the next digest.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from aiplane.data import digests
from aiplane.data.digests import StoredDigest, canonical_json
from aiplane.errors import ConflictError

GENESIS_HASH = "0" * 64
HEAD = "HEAD"
SEQUENCE_PREFIX = "SEQ#"
APPEND_ATTEMPTS = 50
CONDITION_FAILED = "ConditionalCheckFailedException"


def sequence_key(sequence: int) -> str:
    return f"{SEQUENCE_PREFIX}{sequence:012d}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Chain:
    """Where a log keeps its chain and how it hashes an entry.

    `entry` models have pk, sk, sequence_num, prev_hash and event_hash; `head` models pk, sk,
    sequence_num, event_hash and timestamp. `hashed_fields(entry)` is everything an entry's hash
    covers, sequence_num and prev_hash included. `retention`: entries expire (TTL) after this
    long, so a missing oldest prefix is fine when a digest anchored all of it longer ago.
    `shards` is fixed for the life of the table (sequence numbers encode it).
    """

    name: str  # the digests' key prefix
    partition_prefix: str
    shards: int
    entry: type[Model]
    head: type[Model]
    hashed_fields: Callable[[Any], dict[str, Any]]
    retention: timedelta | None = None
    digest_prefix: str = "digests"  # tests give each run its own

    def partition(self, shard: int) -> str:
        return f"{self.partition_prefix}{shard}"

    def shard_of(self, sequence: int) -> int:
        return (sequence - 1) % self.shards

    def first_sequence(self, shard: int) -> int:
        return shard + 1

    def position(self, sequence: int) -> int:
        """How many entries its shard holds up to and including `sequence`."""
        return (sequence - 1) // self.shards + 1

    @property
    def digest_key_prefix(self) -> str:
        return f"{self.digest_prefix}/{self.name}"


def entry_hash(chain: Chain, entry: Any) -> str:
    return hashlib.sha256(canonical_json(chain.hashed_fields(entry))).hexdigest()


def heads(chain: Chain) -> dict[int, Any]:
    """Every shard's head item (shards without one yet are absent), in one consistent batch read."""
    keys = [(chain.partition(shard), HEAD) for shard in range(chain.shards)]
    return {int(head.pk[len(chain.partition_prefix):]): head for head in chain.head.batch_get(keys, consistent_read=True)}


def _next_sequence(chain: Chain, shard: int, head: Any) -> int:
    return int(head.sequence_num) + chain.shards if head is not None else chain.first_sequence(shard)


def _advance_head(chain: Chain, shard: int, entry: Any) -> None:
    """Move the shard's head to `entry` unless it is there or further already."""
    sequence = int(entry.sequence_num)
    head = chain.head(chain.partition(shard), HEAD, sequence_num=sequence, event_hash=entry.event_hash,
                      timestamp=now_iso())
    try:
        head.save(condition=chain.head.pk.does_not_exist() | (chain.head.sequence_num < sequence))
    except PutError as error:
        if error.cause_response_code != CONDITION_FAILED:
            raise


def append(chain: Chain, build: Callable[[int], Any]) -> Any:
    """Append the entry `build(sequence)` makes (its content and index keys); the chain sets its
    keys, sequence_num, prev_hash and event_hash. Returns the saved entry.

    The entry is put on the condition that its sequence is free in its shard, so two writers never
    extend a shard from the same head; then the head moves forward. A writer that finds the
    sequence taken (its head read was stale) moves that head forward itself and chooses again.
    No transaction: an append is two conditional single-item writes.
    """
    spread = 1
    for _ in range(APPEND_ATTEMPTS):
        current = heads(chain)
        least_advanced = sorted(range(chain.shards), key=lambda shard: _next_sequence(chain, shard, current.get(shard)))
        shard = random.choice(least_advanced[:spread])
        head = current.get(shard)
        sequence = _next_sequence(chain, shard, head)
        entry = build(sequence)
        entry.pk, entry.sk, entry.sequence_num = chain.partition(shard), sequence_key(sequence), sequence
        entry.prev_hash = head.event_hash if head is not None else GENESIS_HASH
        entry.event_hash = entry_hash(chain, entry)
        try:
            entry.save(condition=chain.entry.pk.does_not_exist())
        except PutError as error:
            if error.cause_response_code != CONDITION_FAILED:
                raise
            # Another writer took this sequence: its head may lag; move it on, spread out, go again.
            taken = chain.entry.get(chain.partition(shard), sequence_key(sequence), consistent_read=True)
            _advance_head(chain, shard, taken)
            spread = min(chain.shards, spread * 2)
            continue
        _advance_head(chain, shard, entry)
        return entry
    raise ConflictError(f"the {chain.name} audit chain is too busy; try again")


def root_hash(chain: Chain, current: dict[int, Any]) -> str:
    """One hash over every shard's head (the genesis hash while the chain is empty)."""
    if not current:
        return GENESIS_HASH
    listed = [[shard, int(head.sequence_num), head.event_hash] for shard, head in sorted(current.items())]
    return hashlib.sha256(canonical_json(listed)).hexdigest()


def total_appended(chain: Chain, current: dict[int, Any]) -> int:
    return sum(chain.position(int(head.sequence_num)) for head in current.values())


def newest_sequence(current: dict[int, Any]) -> int:
    return max((int(head.sequence_num) for head in current.values()), default=0)


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
            chain.partition(shard), chain.entry.sk.between(sequence_key(low), sequence_key(int(head.sequence_num))),
            consistent_read=True,
        ):
            anchored[str(int(entry.sequence_num))] = entry.event_hash
    digest = {
        "chain": chain.name, "digest_time": now_iso(), "shards": chain.shards,
        "sequence_num": newest_sequence(current), "total_events": total_appended(chain, current),
        "root_hash": root_hash(chain, current),
        "heads": [{"shard": shard, "sequence_num": int(head.sequence_num), "event_hash": head.event_hash}
                  for shard, head in sorted(current.items())],
        "events": anchored,
        "previous_digest": {"key": previous.key, "sha256": previous.sha256, "signature": previous.signature}
        if previous else None,
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


def _first_bad_in_shard(chain: Chain, shard: int, entries: list[Any], head: Any, anchors: _Anchors,
                        now: datetime) -> int | None:
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
        entries = list(chain.entry.query(chain.partition(shard), chain.entry.sk.startswith(SEQUENCE_PREFIX),
                                         consistent_read=True))
        total += len(entries)
        bad = _first_bad_in_shard(chain, shard, entries, current.get(shard), anchors, now)
        if bad is not None and (first_tampered is None or bad < first_tampered):
            first_tampered = bad
    problem = anchors.problem
    if problem is None and first_tampered is not None:
        problem = f"entry {first_tampered} does not hold"
    return Verification(
        valid=problem is None, first_tampered=first_tampered, total_events=total, root_hash=root_hash(chain, current),
        newest_digest=anchors.newest, digests_checked=anchors.checked, problem=problem,
    )


def signed_head(stored: StoredDigest) -> dict[str, Any]:
    """A digest as an API answers it: the signed head and what a client needs to check it."""
    digest = stored.digest
    return {
        "root_hash": digest["root_hash"], "timestamp": digest["digest_time"], "total_events": digest["total_events"],
        "sequence_num": digest["sequence_num"], "heads": digest["heads"], "digest_key": stored.key,
        "signature": stored.signature, "key_id": stored.key_id, "signing_algorithm": stored.signing_algorithm,
        "signed_digest_sha256": hashlib.sha256(canonical_json(digest)).hexdigest(),
        "previous_digest": digest["previous_digest"]["key"] if digest["previous_digest"] else None,
    }
