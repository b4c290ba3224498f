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
SHA-256, signed with a KMS key into an Object Lock (compliance) bucket (`aiplane.audit_anchor`,
apart so that appending needs neither the key nor the bucket).

Verification walks the digest chain from the newest digest back to the first (every signature and
every link), then every shard: each entry must link to its predecessor, hash to its stored hash,
match the hash a digest anchored for it, and no anchored entry may be missing. An edit (rehashed
or not), a deleted middle entry, dropped newest entries or a wipe before the last digest are all
reported with the first sequence number that does not hold. Entries after the newest digest are
protected by the chain and the heads only, until the next digest.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

from pynamodb.exceptions import PutError

from aiplane.clock import now_iso
from aiplane.data.conditions import refused_by_condition
from aiplane.errors import ConflictError

GENESIS_HASH = "0" * 64
HEAD = "HEAD"
SEQUENCE_PREFIX = "SEQ#"
APPEND_ATTEMPTS = 50


def canonical_json(value: Any) -> bytes:
    """The bytes that are hashed and signed: one spelling of a value, whoever writes it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sequence_key(sequence: int) -> str:
    return f"{SEQUENCE_PREFIX}{sequence:012d}"


class Chain(NamedTuple):
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
    entry: Any  # a Model class with the fields above (PynamoDB types attributes per class)
    head: Any
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
    return {
        int(head.pk[len(chain.partition_prefix) :]): head for head in chain.head.batch_get(keys, consistent_read=True)
    }


def _next_sequence(chain: Chain, shard: int, head: Any) -> int:
    return int(head.sequence_num) + chain.shards if head is not None else chain.first_sequence(shard)


def _advance_head(chain: Chain, shard: int, entry: Any) -> None:
    """Move the shard's head to `entry` unless it is there or further already."""
    sequence = int(entry.sequence_num)
    head = chain.head(
        chain.partition(shard), HEAD, sequence_num=sequence, event_hash=entry.event_hash, timestamp=now_iso()
    )
    try:
        head.save(condition=chain.head.pk.does_not_exist() | (chain.head.sequence_num < sequence))
    except PutError as error:
        if not refused_by_condition(error):
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
            if not refused_by_condition(error):
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
