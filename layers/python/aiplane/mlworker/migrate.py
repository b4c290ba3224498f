"""Bring mlworker items stored before the task counters and the newer indexes up to date.

Two steps of `python -m aiplane.backfill` (`aiplane.backfill.STEPS`), each `() -> items changed`:

`tasks_and_counts`:
- Tasks (every one, read through gsi1 a page at a time) get their gsi3 keys (the user's tasks per
  status) and, while queued, their gsi4 queue key; a task already right is not written.
- The counts are recomputed from the tasks: per status on count shard 0 (the other shards set to
  0), per user, and the ended tasks per hour bucket (by `ended_at`). Counts are set, never added.
`audit_time_keys`: audit events without their time-index key (gsi2) get it.

Idempotent: everything is recomputed from the tasks and events themselves, so a second run
changes nothing. Run it once after the deploy that adds the indexes, while no tasks are being
written (a task written during the run can be counted twice or not at all; a rerun settles it).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from pynamodb.exceptions import UpdateError

from aiplane.clock import parse_iso
from aiplane.data.conditions import refused_by_condition
from aiplane.mlworker import audit, counters, tasks
from aiplane.mlworker.counters import HOURS_PARTITION, SHARDS, STATUSES, TaskCountRecord
from aiplane.mlworker.models import (
    AUDIT_PARTITION,
    AUDIT_TIME_PARTITION,
    TASKS_PARTITION,
    AuditEventRecord,
    TaskRecord,
    user_status_key,
)

PAGE_SIZE = 500


def tasks_and_counts() -> int:
    """Fill the tasks' index keys and set the counts; answers how many tasks needed keys."""
    totals: Counter[str] = Counter()
    per_user: defaultdict[str, Counter[str]] = defaultdict(Counter)
    per_hour: defaultdict[str, Counter[str]] = defaultdict(Counter)
    keyed = 0
    for task in TaskRecord.by_created.query(TASKS_PARTITION, page_size=PAGE_SIZE):
        totals[task.status] += 1
        per_user[task.user_id][task.status] += 1
        if task.status in counters.ENDED and task.ended_at:
            per_hour[counters.hour_key(parse_iso(task.ended_at))][task.status] += 1
        keyed += _index_keys(task)
    counts = {(f"TASKCOUNT#{shard}", "ALL"): totals if shard == 0 else Counter() for shard in range(SHARDS)}
    counts |= {(counters.user_key(user_id), "ALL"): by_status for user_id, by_status in per_user.items()}
    counts |= {(HOURS_PARTITION, hour): by_status for hour, by_status in per_hour.items()}
    for (pk, sk), by_status in counts.items():
        TaskCountRecord(pk, sk).update(
            actions=[getattr(TaskCountRecord, status).set(by_status[status]) for status in STATUSES]
        )
    return keyed


def audit_time_keys() -> int:
    """Give audit events stored before the time index their key; answers how many needed it."""
    keyed = 0
    for event in AuditEventRecord.in_sequence.query(
        AUDIT_PARTITION, page_size=PAGE_SIZE, filter_condition=AuditEventRecord.gsi2pk.does_not_exist()
    ):
        event.update(
            actions=[
                AuditEventRecord.gsi2pk.set(AUDIT_TIME_PARTITION),
                AuditEventRecord.gsi2sk.set(audit.time_key(event.timestamp, int(event.sequence_num))),
            ]
        )
        keyed += 1
    return keyed


STEPS = {"mlworker tasks and counts": tasks_and_counts, "mlworker audit events": audit_time_keys}


def _index_keys(task: TaskRecord) -> int:
    """Give `task` the gsi3/gsi4 keys its status calls for (1 when it needed them)."""
    wanted = {"gsi3pk": user_status_key(task.user_id, task.status), "gsi3sk": task.gsi1sk}
    before = (task.gsi4pk, task.gsi4sk)
    tasks.index_queue(task)
    wanted |= {"gsi4pk": task.gsi4pk, "gsi4sk": task.gsi4sk}
    task.gsi4pk, task.gsi4sk = before
    if all(getattr(task, name) == value for name, value in wanted.items()):
        return 0
    attributes = {name: getattr(TaskRecord, name) for name in wanted}
    actions = [
        attributes[name].set(value) if value is not None else attributes[name].remove()
        for name, value in wanted.items()
    ]
    try:
        task.update(actions=actions)  # conditional on the version read
    except UpdateError as error:
        if not refused_by_condition(error):
            raise
        return 0  # changed meanwhile: the write that changed it set its keys
    return 1
