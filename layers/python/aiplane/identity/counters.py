"""Fixed-window counters in DynamoDB, for per-key rate limits and login throttling.

Each window is one item; taking a slot is a single conditional `ADD`, so the limit holds across
any number of concurrent Lambda instances (no read-modify-write).
"""

from __future__ import annotations

import math
import time

from pynamodb.exceptions import UpdateError

from aiplane.data.conditions import refused_by_condition
from aiplane.errors import RateLimitedError
from aiplane.identity.models import CounterRecord


def _window(scope: str, window_s: int, now: float) -> tuple[CounterRecord, float]:
    start = int(now // window_s) * window_s
    return CounterRecord(f"COUNTER#{scope}", f"WINDOW#{start}"), start + window_s


def take(scope: str, *, limit: int, window_s: int, message: str = "rate limit exceeded") -> None:
    """Count one event in the current window, or raise RateLimitedError (with Retry-After)
    when the window already holds `limit` events."""
    now = time.time()
    counter, window_end = _window(scope, window_s, now)
    try:
        counter.update(
            actions=[CounterRecord.hits.add(1), CounterRecord.expires_at_epoch.set(int(window_end) + window_s)],
            condition=CounterRecord.hits.does_not_exist() | (CounterRecord.hits < limit),
        )
    except UpdateError as error:
        if not refused_by_condition(error):
            raise
        retry_after = max(1, math.ceil(window_end - now))
        raise RateLimitedError(
            message, headers={"Retry-After": str(retry_after)}, details={"retry_after": retry_after}
        ) from None


def give_back(scope: str, *, window_s: int) -> None:
    """Undo one `take` in the current window (a login that succeeded is not a failure)."""
    counter, _ = _window(scope, window_s, time.time())
    try:
        counter.update(actions=[CounterRecord.hits.add(-1)], condition=CounterRecord.hits > 0)
    except UpdateError as error:
        if not refused_by_condition(error):
            raise
