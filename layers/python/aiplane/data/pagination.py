"""The one pagination helper: cursor + limit over a DynamoDB Query (never a Scan).

Two cursor styles exist in the contracts:
- opaque: the Query's LastEvaluatedKey, base64-encoded (mlworker, gpufarm, appproxy);
- timestamp: the sort-key value of the last item, e.g. an RFC3339 `createdAt` (runtime).
Both go through `Page` and `parse_limit`, so bounds and errors are the same everywhere.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any, Generic, TypeVar

from aiplane.clock import parse_rfc3339, rfc3339, rfc3339_nano
from aiplane.errors import ValidationError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Where a contract's body is a plain array, the next page's cursor travels in this response header.
NEXT_CURSOR_HEADER = "X-Next-Cursor"

Item = TypeVar("Item")


@dataclass(frozen=True)
class Page(Generic[Item]):
    items: list[Item]
    next_cursor: str | None


def parse_limit(raw: str | int | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise ValidationError("limit must be an integer", param="limit") from None
    if limit < 1 or limit > maximum:
        raise ValidationError(f"limit must be between 1 and {maximum}", param="limit")
    return limit


def timestamp_cursor(raw: str | None, *, nano: bool = False) -> str | None:
    """A timestamp `cursor` (the sort-key value of the previous page's last item) in the stored
    form it is compared with: microseconds, or nanosecond digits where the store keeps those."""
    if not raw:
        return None
    moment = parse_rfc3339(raw, "cursor")
    return rfc3339_nano(moment) if nano else rfc3339(moment)


def encode_cursor(last_evaluated_key: dict[str, Any] | None) -> str | None:
    if not last_evaluated_key:
        return None
    raw = json.dumps(last_evaluated_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError):
        raise ValidationError("cursor is not valid", param="cursor") from None
    if not isinstance(value, dict):
        raise ValidationError("cursor is not valid", param="cursor")
    return value


def query_page(model: Any, hash_key: Any, *, limit: int, cursor: str | None = None, **query: Any) -> Page[Any]:
    """One page of a PynamoDB Query with an opaque cursor.

    `query` passes through to `Model.query` (range_key_condition, index via `index=`,
    filter_condition, scan_index_forward...).
    """
    source = query.pop("index", None) or model
    results = source.query(hash_key, limit=limit, page_size=limit, last_evaluated_key=decode_cursor(cursor), **query)
    items = list(results)
    return Page(items=items, next_cursor=encode_cursor(results.last_evaluated_key))


def one_request(model: Any, hash_key: Any, *, limit: int, cursor: str | None = None, index: Any = None,
                **query: Any) -> Page[Any]:
    """Exactly one Query request: at most `limit` items evaluated, so a `filter_condition` may
    return fewer (even none) with a cursor to read on. `query_page` instead goes on reading until
    `limit` items match, which a selective filter turns into a read of the whole partition."""
    results = (index or model).query(hash_key, page_size=limit, last_evaluated_key=decode_cursor(cursor), **query)
    page: dict[str, Any] = next(results.page_iter, {})
    return Page(items=[model.from_raw_data(raw) for raw in page.get("Items", [])],
                next_cursor=encode_cursor(results.page_iter.last_evaluated_key))
def shard_keys(partition: str, shards: int) -> list[str]:
    """The partitions of a sharded index key: the key itself (so items written before it was
    sharded stay in shard 0) and `<key>#1`…`<key>#<shards - 1>`."""
    return [partition, *(f"{partition}#{shard}" for shard in range(1, shards))]


def newest_across_shards(query_shard: Callable[[str], Iterable[Item]], partitions: list[str], sort_key: Callable[[Item], str],
                         limit: int) -> list[Item]:
    """The `limit` newest items over the shards: `query_shard(partition)` is one shard's Query,
    newest first, with the page's `limit` (so a page reads at most shards × limit items)."""
    return list(islice(heapq.merge(*(query_shard(partition) for partition in partitions), key=sort_key, reverse=True), limit))
