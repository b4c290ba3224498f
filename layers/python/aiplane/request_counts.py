"""Requests served by a family's API across all its instances (Lambda instances, local servers).

Each app instance counts its requests in memory and adds them to one of `SHARDS` counter items in
DynamoDB (a random one: concurrent instances rarely write the same item) at most every `FLUSH_S`,
after a response, so no request waits on a write of its own. The total is the shards (one
BatchGet) plus what this instance has not added yet; another instance's last `FLUSH_S` of requests
shows once it flushes (a retired Lambda instance's unflushed ones are lost). Counted: gpufarm
(its /stats and /metrics report it), in the gpufarm table, pk GPUFARMREQUESTS#<shard>, sk COUNT.
"""

from __future__ import annotations

import random
import threading
import time

from aiplane.data.aws import client
from aiplane.observability import logger
from aiplane.settings import get_settings

SHARDS = 8
FLUSH_S = 10.0
# Each counted family's counts live in its own table (the shared resource of the family's name,
# which every function of the family may write); no other family's code ever writes them.
COUNTED_FAMILIES = ("gpufarm",)


def _key(family: str, shard: int) -> dict[str, dict[str, str]]:
    """pk <FAMILY>REQUESTS#<shard>, sk COUNT: requests added by the instances that chose the shard."""
    return {"pk": {"S": f"{family.upper()}REQUESTS#{shard}"}, "sk": {"S": "COUNT"}}


class SharedRequestCount:
    """One app instance's side of the shared count."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._lock = threading.Lock()
        self.pending = 0
        self._flushed_at = time.monotonic()

    @property
    def counted(self) -> bool:
        return self.family in COUNTED_FAMILIES

    def note(self) -> None:
        with self._lock:
            self.pending += 1

    def flush_due(self) -> bool:
        with self._lock:
            return self.pending > 0 and time.monotonic() - self._flushed_at >= FLUSH_S

    def flush(self) -> None:
        """Add the pending requests to a shard (kept pending if DynamoDB refuses: the next flush retries)."""
        with self._lock:
            count, self.pending, self._flushed_at = self.pending, 0, time.monotonic()
        if not count:
            return
        try:
            client("dynamodb").update_item(
                TableName=get_settings().resource(self.family),
                Key=_key(self.family, random.randrange(SHARDS)),
                UpdateExpression="ADD #value :count",
                ExpressionAttributeNames={"#value": "value"},
                ExpressionAttributeValues={":count": {"N": str(count)}},
            )
        except Exception:  # counting must never fail a request
            logger.exception("request count not flushed")
            with self._lock:
                self.pending += count

    def total(self) -> int:
        """Every instance's flushed requests plus this instance's pending ones."""
        table = get_settings().resource(self.family)
        request = {
            table: {
                "Keys": [_key(self.family, shard) for shard in range(SHARDS)],
                "ProjectionExpression": "#value",
                "ExpressionAttributeNames": {"#value": "value"},
            }
        }
        with self._lock:
            total = self.pending
        while request:
            answer = client("dynamodb").batch_get_item(RequestItems=request)
            total += sum(int(item["value"]["N"]) for item in answer["Responses"].get(table, []))
            request = answer.get("UnprocessedKeys") or {}
        return total
