"""Which GPU agents are alive: registered and heartbeating within their grace period.

Apart from load balancing (which reaches marketplaces and publishes status changes) so that
health and statistics read liveness with nothing but the gpufarm table.
"""

from __future__ import annotations

from aiplane.clock import now
from aiplane.gpufarm.records import GpuAgentRecord


def live_records() -> list[GpuAgentRecord]:
    cutoff = int(now().timestamp())
    return [record for record in GpuAgentRecord.all_agents.query("GPUAGENTS") if record.expires_at_epoch > cutoff]


def live_instance_ids() -> set[str]:
    return {record.instance_id for record in live_records()}
