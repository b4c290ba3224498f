"""The one pagination helper: cursor + limit over a DynamoDB Query (never a Scan).

Two cursor styles exist in the contracts:
- opaque: the Query's LastEvaluatedKey, base64-encoded (mlworker, gpufarm, appproxy);
- timestamp: the sort-key value of the last item, e.g. an RFC3339 `createdAt` (runtime).
Both go through `Page` and `parse_limit`, so bounds and errors are the same everywhere.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Generic, NamedTuple, TypeVar

from aiplane.clock import parse_rfc3339, rfc3339, rfc3339_nano
from aiplane.errors import ValidationError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Where a contract's body is a plain array, the next page's cursor travels in this response header.
NEXT_CURSOR_HEADER = "X-Next-Cursor"

Item = TypeVar("Item")


class Page(NamedTuple, Generic[Item]):
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


def one_request(
    model: Any, hash_key: Any, *, limit: int, cursor: str | None = None, index: Any = None, **query: Any
) -> Page[Any]:
    """Exactly one Query request with an opaque cursor: at most `limit` items evaluated, so a
    `filter_condition` may return fewer (even none) with a cursor to read on (reading on until
    `limit` items match would turn a selective filter into a read of the whole partition)."""
    results = (index or model).query(hash_key, page_size=limit, last_evaluated_key=decode_cursor(cursor), **query)
    page: dict[str, Any] = next(results.page_iter, {})
    return Page(
        items=[model.from_raw_data(raw) for raw in page.get("Items", [])],
        next_cursor=encode_cursor(results.page_iter.last_evaluated_key),
    )
