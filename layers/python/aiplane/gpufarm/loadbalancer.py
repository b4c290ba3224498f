"""GPU agents, their loads (from heartbeats) and the strategies that pick one for a request.

Strategies, over the live agents ordered by instance id:
- round_robin: the next agent in rotation;
- equal_weighted: every instance counts the same, so the least utilised (`load`) one;
- weighted_round_robin: rotation in which each agent takes `weight` consecutive turns;
- least_connections: the fewest open connections;
- least_response_time: the lowest recent response time.
Ties go to the lower instance id, so a fixed load table always gives the same pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from aiplane.errors import ConflictError, NotFoundError, UnavailableError, ValidationError
from aiplane.gpufarm.contracts import now
from aiplane.gpufarm.records import GpuAgentRecord, LoadBalancerRecord

STRATEGIES = ("round_robin", "equal_weighted", "weighted_round_robin", "least_connections", "least_response_time")
DEFAULT_STRATEGY = "round_robin"
HEARTBEAT_GRACE_S = 90  # three missed 30 s heartbeats and the agent drops out


@dataclass(frozen=True)
class AgentLoad:
    instance_id: str
    url: str
    connections: int
    load: float
    response_time_ms: float
    weight: int = 1

    def view(self) -> dict[str, Any]:
        return {"connections": self.connections, "load": self.load, "response_time_ms": self.response_time_ms}


def _load_of(record: GpuAgentRecord) -> AgentLoad:
    return AgentLoad(record.instance_id, record.url, int(record.connections), float(record.load),
                     float(record.response_time_ms), int(record.weight))


def register_agent(owner_id: str, is_admin: bool, instance_id: str, url: str, gpus: list[dict[str, Any]], weight: int,
                   contract_id: str | None) -> dict[str, Any]:
    moment = now()
    record = GpuAgentRecord(
        GpuAgentRecord.key(instance_id), gsi1sk=instance_id, instance_id=instance_id, url=url, owner_id=owner_id,
        contract_id=contract_id, gpus=gpus, weight=weight, registered_at=moment, heartbeat_at=moment,
        expires_at_epoch=int((moment + timedelta(seconds=HEARTBEAT_GRACE_S)).timestamp()),
    )
    # A restarted agent re-registers itself; nobody else may take over its instance id.
    may_replace = None if is_admin else (GpuAgentRecord.pk.does_not_exist() | (GpuAgentRecord.owner_id == owner_id))
    try:
        record.save(condition=may_replace)
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            raise ConflictError(f"instance {instance_id!r} is registered by another owner", param="instance_id") from error
        raise
    return {"instance_id": instance_id, "registered": True, "heartbeat_interval_s": HEARTBEAT_GRACE_S // 3}


def heartbeat(owner_id: str, is_admin: bool, instance_id: str, connections: int, load: float, response_time_ms: float) -> None:
    record = _agent(instance_id)
    if not is_admin and record.owner_id != owner_id:
        raise NotFoundError(f"no agent {instance_id!r}", param="instance_id")
    moment = now()
    record.update(actions=[
        GpuAgentRecord.connections.set(connections), GpuAgentRecord.load.set(load),
        GpuAgentRecord.response_time_ms.set(response_time_ms), GpuAgentRecord.heartbeat_at.set(moment),
        GpuAgentRecord.expires_at_epoch.set(int((moment + timedelta(seconds=HEARTBEAT_GRACE_S)).timestamp())),
    ])


def deregister_agent(owner_id: str, is_admin: bool, instance_id: str) -> None:
    record = _agent(instance_id)
    if not is_admin and record.owner_id != owner_id:
        raise NotFoundError(f"no agent {instance_id!r}", param="instance_id")
    record.delete()


def forget_agent(instance_id: str) -> None:
    GpuAgentRecord(GpuAgentRecord.key(instance_id), "META").delete()


def _agent(instance_id: str) -> GpuAgentRecord:
    try:
        record = GpuAgentRecord.get(GpuAgentRecord.key(instance_id), "META")
    except DoesNotExist:
        raise NotFoundError(f"no agent {instance_id!r}", param="instance_id") from None
    if record.expires_at_epoch <= now().timestamp():  # TTL deletes lazily: check on read
        raise NotFoundError(f"agent {instance_id!r} stopped heartbeating", param="instance_id")
    return record


def live_agents() -> list[AgentLoad]:
    cutoff = int(now().timestamp())
    return [_load_of(record) for record in GpuAgentRecord.all_agents.query("GPUAGENTS")
            if record.expires_at_epoch > cutoff]


def agent_load(instance_id: str) -> AgentLoad:
    return _load_of(_agent(instance_id))


def _state() -> LoadBalancerRecord:
    try:
        return LoadBalancerRecord.get("LOADBALANCER", "STRATEGY")
    except DoesNotExist:
        return LoadBalancerRecord(strategy=DEFAULT_STRATEGY, rotation=0)


def get_strategy() -> str:
    return _state().strategy


def set_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValidationError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}", param="strategy")
    LoadBalancerRecord("LOADBALANCER", "STRATEGY").update(actions=[LoadBalancerRecord.strategy.set(strategy)])
    return strategy


def _next_turn() -> int:
    """An atomic counter: concurrent proxies each get their own turn."""
    record = LoadBalancerRecord("LOADBALANCER", "STRATEGY")
    record.update(actions=[LoadBalancerRecord.rotation.add(1)])
    return int(record.rotation) - 1


def choose(strategy: str, agents: list[AgentLoad], turn: int) -> AgentLoad:
    """The pure choice over a load table (`turn` feeds the rotating strategies)."""
    if not agents:
        raise UnavailableError("no GPU agent is registered and heartbeating")
    ordered = sorted(agents, key=lambda agent: agent.instance_id)
    if strategy == "round_robin":
        return ordered[turn % len(ordered)]
    if strategy == "weighted_round_robin":
        position = turn % sum(max(agent.weight, 1) for agent in ordered)
        for agent in ordered:
            position -= max(agent.weight, 1)
            if position < 0:
                return agent
    if strategy == "equal_weighted":
        return min(ordered, key=lambda agent: agent.load)
    if strategy == "least_connections":
        return min(ordered, key=lambda agent: agent.connections)
    if strategy == "least_response_time":
        return min(ordered, key=lambda agent: agent.response_time_ms)
    raise ValidationError(f"unknown strategy {strategy!r}", param="strategy")


def pick_agent() -> AgentLoad:
    agents = live_agents()
    strategy = get_strategy()
    turn = _next_turn() if strategy in ("round_robin", "weighted_round_robin") and agents else 0
    return choose(strategy, agents, turn)
