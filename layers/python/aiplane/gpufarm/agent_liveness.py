"""Which GPU agents are alive: registered and heartbeating within their grace period.

Apart from load balancing (which reaches marketplaces and publishes status changes) so that
health and statistics read liveness with nothing but the gpufarm table. Agents are keyed by
heartbeat expiry (`GpuAgentRecord.live_sort_key`), so each query reads live agents only: every
agent (admins), a caller's own, or the shared ones.
"""

from __future__ import annotations

from aiplane.clock import now
from aiplane.gpufarm.records import ALL_AGENTS, SHARED_AGENTS, GpuAgentRecord

MAX_AGENTS_READ = 1000  # one caller's own or the shared agents: far more than the fleet caps allow


def set_index_keys(record: GpuAgentRecord) -> GpuAgentRecord:
    """The agent's keys from its fields (writers and the backfill use this one rule)."""
    record.gsi1pk = ALL_AGENTS
    record.gsi1sk = record.gsi2sk = GpuAgentRecord.live_sort_key(record.expires_at_epoch, record.instance_id)
    record.gsi2pk = GpuAgentRecord.reach_key(record.owner_id, bool(record.shared))
    return record


def _live(query, limit: int) -> list[GpuAgentRecord]:
    cutoff = int(now().timestamp())
    # Records written before these keys sort after every number; the expiry check drops the dead ones.
    return [
        record for record in query(GpuAgentRecord.live_sort_key(cutoff, "~"), limit) if record.expires_at_epoch > cutoff
    ]


def live_records(limit: int = MAX_AGENTS_READ, after: str | None = None) -> list[GpuAgentRecord]:
    """Live agents, every owner's (admins' views), a page after the `gsi1sk` `after`."""
    return _live(
        lambda bound, count: GpuAgentRecord.all_agents.query(
            ALL_AGENTS, GpuAgentRecord.gsi1sk > max(bound, after or ""), limit=count
        ),
        limit,
    )


def reachable_records(owner_id: str) -> list[GpuAgentRecord]:
    """The live agents a caller's requests may reach: its own and the shared ones."""
    return [
        record
        for partition in (GpuAgentRecord.reach_key(owner_id, False), SHARED_AGENTS)
        for record in _live(
            lambda bound, count, partition=partition: GpuAgentRecord.by_reach.query(
                partition, GpuAgentRecord.gsi2sk > bound, limit=count
            ),
            MAX_AGENTS_READ,
        )
    ]


def own_records(owner_id: str) -> list[GpuAgentRecord]:
    """The caller's own live agents, shared ones included."""
    return [record for record in reachable_records(owner_id) if record.owner_id == owner_id]


def live_instance_ids() -> set[str]:
    return {record.instance_id for record in live_records()}
