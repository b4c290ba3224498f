"""Backfill of the keys that older items lack, once per deployed environment after the deploy that
adds them (README, "Deploying"). Idempotent: each step touches only items still in the old form,
so a second run (or one interrupted and run again) changes nothing it already changed.

    AIPLANE_ENV=dev AWS_REGION=<region> python -m aiplane.backfill

- files: nodes in the single FILES#ALL index partition move to their shard (gsi2pk);
- raw events: items of the single RAWEVENTS partition are copied to their shard, then deleted;
- event triggers: gsi3 (a function's triggers) is set;
- access entries: gsi3 (an identity's entries by creation) is set;
- auth failures of the days /activity/alerts reads move to their AUTHFAIL#<day> partition (gsi2pk);
- mlworker tasks, counts and audit events (`aiplane.mlworker.migrate`; run it while no tasks are submitted).
The event nid counters need none: a shard starts above the old single counter on first use.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiplane.activity.views import AUTH_ALERT_DAYS
from aiplane.events.models import RawEventRecord, TriggerRecord, trigger_function_key
from aiplane.events.raw import RAW_EVENTS_PARTITION, raw_events_key
from aiplane.files.models import ALL_NODES, FileNodeRecord, all_nodes_key
from aiplane.identity.audit import FAILURE, SUCCESS, day_key
from aiplane.identity.models import AccessEntryRecord, AuthEventRecord, identity_entries_key
from aiplane.mlworker import migrate


def files() -> int:
    moved = 0
    for node in FileNodeRecord.by_creation.query(ALL_NODES):
        node.update(
            actions=[FileNodeRecord.gsi2pk.set(all_nodes_key(node.node_id))], condition=FileNodeRecord.pk.exists()
        )
        moved += 1
    return moved


def raw_events() -> int:
    moved = 0
    for record in RawEventRecord.query(RAW_EVENTS_PARTITION):
        copy = RawEventRecord(
            raw_events_key(int(record.nid)),
            record.sk,
            **{name: getattr(record, name) for name in RawEventRecord.get_attributes() if name not in ("pk", "sk")},
        )
        copy.save()
        record.delete()
        moved += 1
    return moved


def triggers() -> int:
    filled = 0
    for trigger in TriggerRecord.by_created.query("TRIGGERS", filter_condition=TriggerRecord.gsi3pk.does_not_exist()):
        trigger.update(
            actions=[
                TriggerRecord.gsi3pk.set(trigger_function_key(trigger.function)),
                TriggerRecord.gsi3sk.set(trigger.gsi1sk),
            ],
            condition=TriggerRecord.pk.exists(),
        )
        filled += 1
    return filled


def access_entries() -> int:
    filled = 0
    for entry in AccessEntryRecord.by_creation.query(
        "ACCESS", filter_condition=AccessEntryRecord.gsi3pk.does_not_exist()
    ):
        entry.update(
            actions=[
                AccessEntryRecord.gsi3pk.set(identity_entries_key(entry.identity)),
                AccessEntryRecord.gsi3sk.set(entry.gsi2sk),
            ],
            condition=AccessEntryRecord.pk.exists(),
        )
        filled += 1
    return filled


def auth_failures(now: datetime | None = None) -> int:
    moved = 0
    today = now or datetime.now(UTC)
    for days_ago in range(AUTH_ALERT_DAYS):
        day = today - timedelta(days=days_ago)
        for event in AuthEventRecord.by_day.query(
            day_key(SUCCESS, day), filter_condition=AuthEventRecord.outcome == FAILURE
        ):
            event.update(
                actions=[AuthEventRecord.gsi2pk.set(day_key(FAILURE, event.at))], condition=AuthEventRecord.pk.exists()
            )
            moved += 1
    return moved


STEPS = {
    "files": files,
    "raw events": raw_events,
    "event triggers": triggers,
    "access entries": access_entries,
    "auth failures": auth_failures,
    **migrate.STEPS,
}


def run() -> dict[str, int]:
    return {name: step() for name, step in STEPS.items()}


if __name__ == "__main__":
    for name, changed in run().items():
        print(f"{name}: {changed} items backfilled")
