"""PynamoDB models of the GPU fleet, all in the gpufarm table.

- GPU contract: pk CONTRACT#<id>; gsi1 GPUOFFER#<provider>#<offer id> (DELETE by the id the
  caller provisioned), gsi2 GPUSTATUS#<status> (active count, lease sweep).
- GPU preferences: pk USER#<id>, sk GPU_PREFERENCES.
- Agent load: pk GPUAGENT#<instance id>; gsi1 GPUAGENTS (every agent), TTL after missed heartbeats;
  it names the contract whose agent credential registered it, and its owner.
- Load-balancer state: pk LOADBALANCER, sk STRATEGY (strategy + rotation counter).
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
from pynamodb.models import Model

from aiplane.data.models import Gsi1, Gsi2, table_name
from aiplane.settings import get_settings
from aiplane_shared import resources


class GpuContractRecord(Model):
    class Meta:
        table_name = table_name(resources.GPUFARM_TABLE)
        region = get_settings().region

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="META")
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()
    by_offer = Gsi1()
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
    hold_ids: ListAttribute[str] = ListAttribute(default=list)  # spend holds (commerce.holds) of the first period and each renewal
    held_cents = NumberAttribute(default=0)
    provider_instance_id = UnicodeAttribute(null=True)  # EC2 instance id or the marketplace's rental id
    launched_at = UTCDateTimeAttribute(null=True)  # runtime is charged from here
    price_per_hour = NumberAttribute(null=True)  # USD an hour of what was launched
    instance_type = UnicodeAttribute(null=True)
    zone = UnicodeAttribute(null=True)
    attempts: ListAttribute[Any] = ListAttribute(of=JSONAttribute, default=list)
    failure_reasons: ListAttribute[str] = ListAttribute(default=list)
    agent_key_hash = UnicodeAttribute(null=True)  # the contract's agent credential (scope gpu-agent), revoked at its end

    @staticmethod
    def key(contract_id: str) -> str:
        return f"CONTRACT#{contract_id}"

    @staticmethod
    def offer_key(provider: str, offer_id: str) -> str:
        return f"GPUOFFER#{provider}#{offer_id}"

    @staticmethod
    def status_key(status: str) -> str:
        return f"GPUSTATUS#{status}"


class GpuPreferencesRecord(Model):
    class Meta:
        table_name = table_name(resources.GPUFARM_TABLE)
        region = get_settings().region

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


class GpuAgentRecord(Model):
    class Meta:
        table_name = table_name(resources.GPUFARM_TABLE)
        region = get_settings().region

    pk = UnicodeAttribute(hash_key=True)  # GPUAGENT#<instance id>
    sk = UnicodeAttribute(range_key=True, default="META")
    gsi1pk = UnicodeAttribute(default="GPUAGENTS")
    gsi1sk = UnicodeAttribute()  # instance id
    all_agents = Gsi1()

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


class LoadBalancerRecord(Model):
    class Meta:
        table_name = table_name(resources.GPUFARM_TABLE)
        region = get_settings().region

    pk = UnicodeAttribute(hash_key=True, default="LOADBALANCER")
    sk = UnicodeAttribute(range_key=True, default="STRATEGY")
    strategy = UnicodeAttribute(default="round_robin")
    rotation = NumberAttribute(default=0)  # requests routed so far: the round-robin cursor
