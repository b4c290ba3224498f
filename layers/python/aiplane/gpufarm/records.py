"""PynamoDB models of the GPU fleet, all in the gpufarm table.

- GPU contract: pk CONTRACT#<id>; gsi1 USERCONTRACTS#<user> / LIVE|DONE#<provider>#<offer id>#<created>#<id>
  (a user's contracts: the export, and DELETE by the offer id the caller provisioned, newest live
  first), gsi2 GPUSTATUS#<status> / <provider>#<offer id>#<created>#<id> (lease sweep, reconcile,
  an admin's DELETE by offer id).
- Running contracts: pk GPUCOUNT#<shard>, sk RUNNING, kept by `contracts.set_status`.
- GPU preferences: pk USER#<id>, sk GPU_PREFERENCES.
- Agent load: pk GPUAGENT#<instance id>; gsi1 GPUAGENTS (every agent), gsi2 AGENTOWNER#<owner> or
  SHAREDAGENTS (what a caller reaches), both sorted by <heartbeat expiry>#<instance id> so a query
  reads live agents only; TTL after missed heartbeats. It names the contract whose agent credential
  registered it, and its owner.
- Load-balancer state: pk LOADBALANCER, sk STRATEGY (strategy); sk ROTATION#<caller> (each caller's
  round-robin cursor: no one item every proxy request writes).
- Requests served by the gpufarm API: pk GPUFARMREQUESTS#<shard>, sk COUNT (`aiplane.request_counts`).
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)

from aiplane.data.gpufarm_table import GpufarmItem
from aiplane.data.models import Gsi1, Gsi2


class GpuContractRecord(GpufarmItem):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="META")
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()
    by_user = Gsi1()
    by_status = Gsi2()

    contract_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    provider = UnicodeAttribute()
    offer_id = UnicodeAttribute()  # the instanceId the caller provisioned (an offer of the catalog)
    status = UnicodeAttribute()  # provisioning, running, failed, terminating, terminated
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    duration_hours = NumberAttribute(null=True)
    auto_renew = BooleanAttribute(default=False)
    ends_at = UTCDateTimeAttribute(null=True)
    market = UnicodeAttribute(default="on-demand")  # spot or on-demand
    on_demand_fallback = BooleanAttribute(default=False)
    price_limit = NumberAttribute(null=True)  # USD an hour the contract may cost at most (what is held)
    gpu_count = NumberAttribute(default=1)
    hold_ids: ListAttribute[str] = ListAttribute(
        default=list
    )  # spend holds (commerce.holds) of the first period and each renewal
    held_cents = NumberAttribute(default=0)
    provider_instance_id = UnicodeAttribute(null=True)  # EC2 instance id or the marketplace's rental id
    launched_at = UTCDateTimeAttribute(null=True)  # runtime is charged from here
    price_per_hour = NumberAttribute(null=True)  # USD an hour of what was launched
    instance_type = UnicodeAttribute(null=True)
    zone = UnicodeAttribute(null=True)
    attempts: ListAttribute[Any] = ListAttribute(of=JSONAttribute, default=list)
    failure_reasons: ListAttribute[str] = ListAttribute(default=list)
    agent_key_hash = UnicodeAttribute(
        null=True
    )  # the contract's agent credential (scope gpu-agent), revoked at its end

    @staticmethod
    def key(contract_id: str) -> str:
        return f"CONTRACT#{contract_id}"

    @staticmethod
    def user_key(user_id: str) -> str:
        return f"USERCONTRACTS#{user_id}"

    @staticmethod
    def offer_prefix(provider: str, offer_id: str) -> str:
        return f"{provider}#{offer_id}#"

    @staticmethod
    def user_sort_key(live: bool, provider: str, offer_id: str, created_sort_key: str) -> str:
        return f"{'LIVE' if live else 'DONE'}#{GpuContractRecord.offer_prefix(provider, offer_id)}{created_sort_key}"

    @staticmethod
    def status_key(status: str) -> str:
        return f"GPUSTATUS#{status}"


RUNNING_COUNT_SHARDS = 8


class RunningCountRecord(GpufarmItem):
    """One shard of the running-contract count (pk GPUCOUNT#<shard>, sk RUNNING)."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="RUNNING")
    value = NumberAttribute(default=0)

    @staticmethod
    def shard_key(shard: int) -> str:
        return f"GPUCOUNT#{shard}"


# What a user without saved preferences has, and what a save leaves unset keeps.
DEFAULT_PREFERENCES: dict[str, Any] = {
    "preferred_vendors": [],
    "preferred_tiers": [],
    "min_vram": 0,
    "max_price_per_hour": None,
    "priority": "balanced",
}


class GpuPreferencesRecord(GpufarmItem):
    pk = UnicodeAttribute(hash_key=True)  # USER#<id>
    sk = UnicodeAttribute(range_key=True, default="GPU_PREFERENCES")
    preferences_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    preferred_vendors: ListAttribute[str] = ListAttribute(default=list)
    preferred_tiers: ListAttribute[str] = ListAttribute(default=list)
    min_vram = NumberAttribute(default=0)
    max_price_per_hour = NumberAttribute(null=True)
    priority = UnicodeAttribute(default="balanced")
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


ALL_AGENTS = "GPUAGENTS"
SHARED_AGENTS = "SHAREDAGENTS"


class GpuAgentRecord(GpufarmItem):
    pk = UnicodeAttribute(hash_key=True)  # GPUAGENT#<instance id>
    sk = UnicodeAttribute(range_key=True, default="META")
    gsi1pk = UnicodeAttribute(default=ALL_AGENTS)
    gsi1sk = UnicodeAttribute()  # live_sort_key
    gsi2pk = UnicodeAttribute(null=True)  # reach_key
    gsi2sk = UnicodeAttribute(null=True)  # live_sort_key
    all_agents = Gsi1()
    by_reach = Gsi2()

    instance_id = UnicodeAttribute()
    url = UnicodeAttribute()
    owner_id = UnicodeAttribute()
    contract_id = UnicodeAttribute(null=True)
    gpus: ListAttribute[Any] = ListAttribute(of=JSONAttribute, default=list)
    weight = NumberAttribute(default=1)  # the instance's GPU count until an admin sets it
    shared = BooleanAttribute(default=False)  # an admin shared it: everyone's untargeted requests may reach it
    connections = NumberAttribute(default=0)
    load = NumberAttribute(default=0)
    response_time_ms = NumberAttribute(default=0)
    total_connections = NumberAttribute(default=0)  # requests the proxy sent it
    registered_at = UTCDateTimeAttribute()
    heartbeat_at = UTCDateTimeAttribute()
    expires_at_epoch = NumberAttribute()  # TTL: an agent that stops heartbeating drops out

    @staticmethod
    def key(instance_id: str) -> str:
        return f"GPUAGENT#{instance_id}"

    @staticmethod
    def live_sort_key(expires_at_epoch: float, instance_id: str) -> str:
        """Sorted by heartbeat expiry: `gsi > now` reads the live agents, not every one TTL has not removed yet."""
        return f"{int(expires_at_epoch):012d}#{instance_id}"

    @staticmethod
    def reach_key(owner_id: str, shared: bool) -> str:
        """Whom an agent serves: everyone's untargeted requests once shared, else its owner's."""
        return SHARED_AGENTS if shared else f"AGENTOWNER#{owner_id}"


class LoadBalancerRecord(GpufarmItem):
    pk = UnicodeAttribute(hash_key=True, default="LOADBALANCER")
    sk = UnicodeAttribute(range_key=True, default="STRATEGY")
    strategy = UnicodeAttribute(default="round_robin")
    rotation = NumberAttribute(default=0)  # on ROTATION#<caller>: the caller's requests routed so far

    @staticmethod
    def rotation_key(caller_id: str) -> str:
        return f"ROTATION#{caller_id}"
