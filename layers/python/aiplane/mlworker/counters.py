"""Task counts kept by the writes, so the queue stats and the scheduler status read a few items
instead of every task.

Every write that creates a task or changes its status adds, in the same transaction, -1 to the
old status and +1 to the new one on one of `SHARDS` count items (chosen at random: concurrent
writers rarely touch the same item) and on the user's count item, and +1 to the hour bucket of an ended task (completed or
failed). Totals read the shards (one BatchGet); "since" counts Query the hour buckets (at most
one per hour asked for).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.transactions import TransactWrite

from aiplane.mlworker.models import MlworkerItem, TaskRecord

SHARDS = 8
STATUSES = ("queued", "preparing", "running", "collecting", "completed", "failed")
ENDED = ("completed", "failed")
HOURS_PARTITION = "TASKCOUNT#HOURS"


class TaskCountRecord(MlworkerItem):
    """pk TASKCOUNT#<shard> sk ALL: tasks per status; pk TASKCOUNT#HOURS sk HOUR#<yyyy-mm-ddThh>: ended in that hour."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    queued = NumberAttribute(default=0)
    preparing = NumberAttribute(default=0)
    running = NumberAttribute(default=0)
    collecting = NumberAttribute(default=0)
    completed = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)


def hour_key(moment: datetime) -> str:
    return f"HOUR#{moment.strftime('%Y-%m-%dT%H')}"


def persisted_status(task: TaskRecord) -> str | None:
    """The status the stored item has (None for a new task), remembered by `tasks.set_status`."""
    return getattr(task, "_persisted_status", task.status if task.version is not None else None)


def record_transitions(transaction: TransactWrite, changed: list[TaskRecord], now: datetime) -> None:
    """Add the count changes of saving `changed` to `transaction`: one update per count item (a
    transaction may touch an item once), nothing for a task whose status is unchanged."""
    deltas: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    shard = f"TASKCOUNT#{random.randrange(SHARDS)}"
    for task in changed:
        before = persisted_status(task)
        if before == task.status:
            continue
        for key in ((shard, "ALL"), (user_key(task.user_id), "ALL")):
            deltas[key][task.status] += 1
            if before is not None:
                deltas[key][before] -= 1
        if task.status in ENDED:
            deltas[(HOURS_PARTITION, hour_key(now))][task.status] += 1
    for (pk, sk), delta in deltas.items():
        actions = [getattr(TaskCountRecord, status).add(amount) for status, amount in delta.items() if amount]
        if actions:
            transaction.update(TaskCountRecord(pk, sk), actions=actions)


def saved(task: TaskRecord) -> None:
    """After a successful save the stored status is the task's."""
    task._persisted_status = task.status


def user_key(user_id: str) -> str:
    return f"TASKCOUNT#USER#{user_id}"


def totals(user_id: str | None = None) -> dict[str, int]:
    """Tasks per status: everyone's, or one user's."""
    counts = dict.fromkeys(STATUSES, 0)
    keys = [(user_key(user_id), "ALL")] if user_id is not None else [(f"TASKCOUNT#{s}", "ALL") for s in range(SHARDS)]
    for record in TaskCountRecord.batch_get(keys):
        for status in STATUSES:
            counts[status] += int(getattr(record, status) or 0)
    return counts


def ended_since(moment: datetime) -> dict[str, int]:
    """Tasks that ended from the start of `moment`'s hour on."""
    counts = dict.fromkeys(ENDED, 0)
    hours = TaskCountRecord.query(
        HOURS_PARTITION,
        TaskCountRecord.sk >= hour_key(moment),
        limit=int((datetime.now(moment.tzinfo) - moment) / timedelta(hours=1)) + 2,
    )
    for record in hours:
        for status in ENDED:
            counts[status] += int(getattr(record, status) or 0)
    return counts
