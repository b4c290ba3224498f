"""GPU contract statuses and the reads of a contract, without its lifecycle.

Kept apart from `contracts` (which launches, ends and revokes agent credentials) so that code
that only reads contracts, such as load balancing and health, imports nothing that touches
credentials, EC2 or the provisioning queue, and its role is derived without them.
"""

from __future__ import annotations

import random
from datetime import datetime

from aiplane.clock import now, rfc3339_seconds
from aiplane.commerce.windows import cost_cents
from aiplane.data.models import get_or_none
from aiplane.gpufarm.records import RUNNING_COUNT_SHARDS, GpuContractRecord, RunningCountRecord

PROVISIONING, RUNNING, FAILED, TERMINATING, TERMINATED, STOPPED = (
    "provisioning",
    "running",
    "failed",
    "terminating",
    "terminated",
    "stopped",
)
FINISHED = (FAILED, TERMINATED)
LIVE = (PROVISIONING, RUNNING, STOPPED, TERMINATING)


def set_index_keys(record: GpuContractRecord) -> GpuContractRecord:
    """The contract's keys from its fields: the user's contracts (live ones apart, newest first per
    offer) and its status (per offer, newest first). Writers and the backfill use this one rule."""
    created = rfc3339_seconds(record.created_at) + record.contract_id
    record.gsi1pk = GpuContractRecord.user_key(record.user_id)
    record.gsi1sk = GpuContractRecord.user_sort_key(
        record.status not in FINISHED, record.provider, record.offer_id, created
    )
    record.gsi2pk = GpuContractRecord.status_key(record.status)
    record.gsi2sk = GpuContractRecord.offer_prefix(record.provider, record.offer_id) + created
    return record


def running_shard() -> RunningCountRecord:
    """A random shard: concurrent status writes rarely touch the same count item."""
    return RunningCountRecord(RunningCountRecord.shard_key(random.randrange(RUNNING_COUNT_SHARDS)), "RUNNING")


def add_running(delta: int) -> None:
    """For contracts written running outright (the local stack's own machine); status changes
    count in `contracts.set_status`'s transaction."""
    running_shard().update(actions=[RunningCountRecord.value.add(delta)])


def get_contract(contract_id: str) -> GpuContractRecord | None:
    return get_or_none(GpuContractRecord, GpuContractRecord.key(contract_id), "META")


def running_count() -> int:
    """Running contracts, from the count shards (one BatchGet), never from the contracts."""
    keys = [(RunningCountRecord.shard_key(shard), "RUNNING") for shard in range(RUNNING_COUNT_SHARDS)]
    return sum(int(record.value or 0) for record in RunningCountRecord.batch_get(keys))


def actual_cost_cents(record: GpuContractRecord, moment: datetime | None = None) -> int:
    """What the contract has cost so far: its hourly price since launch."""
    if record.launched_at is None or record.price_per_hour is None:
        return 0
    hours = max(0.0, ((moment or now()) - record.launched_at).total_seconds() / 3600)
    return cost_cents(record.price_per_hour, hours)


def user_contracts(user_id: str, limit: int, after: str | None = None) -> list[GpuContractRecord]:
    """A page of the user's contracts (live ones first, then by offer and creation); `after` is
    the previous page's last `gsi1sk`."""
    condition = GpuContractRecord.gsi1sk > after if after else None
    return list(GpuContractRecord.by_user.query(GpuContractRecord.user_key(user_id), condition, limit=limit))


def settled_cost_cents(record: GpuContractRecord) -> int:
    """As settled: runtime until it ended (its last update), at most what was held."""
    cents = actual_cost_cents(record, record.updated_at if record.status in FINISHED else None)
    return min(cents, int(record.held_cents)) if record.held_cents else cents
