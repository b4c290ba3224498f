"""Hot partitions spread over shards: a partition written by every request of a kind (all files,
all raw events) is `SHARDS` partitions `<prefix>#<shard>`, and a listing merges the shards' Queries,
which share one sort-key order, into that order lazily: each shard is read a page at a time, only
as far as the merged page needs (about `limit` items plus one page per shard, whatever the total).
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

SHARDS = 8

Item = TypeVar("Item")


def shard_of(value: str, shards: int = SHARDS) -> int:
    """A stable shard for an id (CRC-32: the same in every process, unlike `hash`)."""
    return zlib.crc32(value.encode()) % shards


def shard_keys(prefix: str, shards: int = SHARDS, *, unsharded_first: bool = False) -> list[str]:
    """The shards' partitions; `unsharded_first`: shard 0 is the prefix itself, so that the items
    written before the partition was sharded stay in it (no backfill)."""
    if unsharded_first:
        return [prefix, *(f"{prefix}#{shard}" for shard in range(1, shards))]
    return [f"{prefix}#{shard}" for shard in range(shards)]


def shard_page_size(limit: int, shards: int = SHARDS) -> int:
    """Each shard's Query page: the merged page's share, plus one to see past it."""
    return -(-limit // shards) + 1


def newest(queries: Iterable[Iterable[Item]], key: Callable[[Item], Any], limit: int) -> list[Item]:
    """The `limit` newest items of per-shard Queries that each read newest first."""
    return list(islice(merged(queries, key, reverse=True), limit))


def merged(queries: Iterable[Iterable[Item]], key: Callable[[Item], Any], *, reverse: bool = False) -> Iterator[Item]:
    """The items of per-shard Queries (each already in `key` order) in one order, read lazily."""
    return heapq.merge(*queries, key=key, reverse=reverse)
