"""GPU agents, their loads (from heartbeats) and the strategies that pick one for a request.

Agents are who they say they are: only the agent credential of a running contract registers an
agent, for that contract's instance, at the address EC2 reports for it (see `register_agent`);
only that credential reports its loads. A caller reaches its own agents and those an admin
shared (`configure_agent`); an admin also sees and targets every agent.

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
from urllib.parse import urlsplit

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from aiplane.clock import now
from aiplane.data.aws import client
from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import get_or_404, get_or_none
from aiplane.errors import ForbiddenError, NotFoundError, UnavailableError, ValidationError
from aiplane.gpufarm import agent_liveness, catalog, contract_states, status_updates
from aiplane.gpufarm.agent_liveness import live_records, own_records, reachable_records
from aiplane.gpufarm.contract_states import RUNNING, TERMINATING
from aiplane.gpufarm.records import GpuAgentRecord, GpuContractRecord, LoadBalancerRecord
from aiplane.identity.principal import Principal
from aiplane.settings import get_settings

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
    total_connections: int = 0

    def view(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "load": self.load,
            "response_time_ms": self.response_time_ms,
            # AIServe.Farm's names (its CLI reads them); agents run on aws contracts only (`agent_address`)
            "instance_id": self.instance_id,
            "provider": catalog.AWS,
            "active_connections": self.connections,
            "total_connections": self.total_connections,
            "avg_response_time": self.response_time_ms,
            "weight": self.weight,
        }


def _load_of(record: GpuAgentRecord) -> AgentLoad:
    return AgentLoad(
        record.instance_id,
        record.url,
        int(record.connections),
        float(record.load),
        float(record.response_time_ms),
        int(record.weight),
        int(record.total_connections or 0),
    )


def _agent_contract(agent: Principal, instance_id: str, *statuses: str) -> GpuContractRecord:
    """The contract the agent credential was issued for, which must be the instance's."""
    contract = contract_states.get_contract(agent.claims.get("contractId", ""))
    if contract is None or contract.user_id != agent.id:
        raise ForbiddenError("the agent credential names no contract of yours")
    if contract.provider_instance_id != instance_id:
        raise ForbiddenError(
            f"instance {instance_id!r} is not the instance of {contract.contract_id}", param="instance_id"
        )
    if contract.status not in statuses:
        raise ForbiddenError(f"{contract.contract_id} is {contract.status}, not {' or '.join(statuses)}")
    return contract


def agent_address(contract: GpuContractRecord) -> tuple[str, int | None]:
    """Where the contract's agent may listen: the private IP EC2 reports for the instance (any
    port), or, in the local stack, the loopback host:port its harness recorded on the instance."""
    if contract.provider != catalog.AWS:
        raise ForbiddenError(f"{contract.provider} rentals record no agent address, so no agent can register for them")
    reservations = client("ec2").describe_instances(InstanceIds=[contract.provider_instance_id])["Reservations"]
    instance = reservations[0]["Instances"][0]
    address_tag = get_settings().gpu_agent_address_tag
    if not address_tag:
        if not instance.get("PrivateIpAddress"):
            raise ForbiddenError(f"EC2 reports no private IP for {contract.provider_instance_id} yet")
        return instance["PrivateIpAddress"], None
    recorded = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}.get(address_tag)
    if not recorded:
        raise ForbiddenError(f"the local harness recorded no agent address for {contract.provider_instance_id}")
    host, _, port = recorded.rpartition(":")
    return host, int(port)


def _check_agent_url(url: str, host: str, port: int | None) -> None:
    """Decided from the URL alone, before anything connects to it."""
    try:
        parts = urlsplit(url)
        url_port = parts.port
    except ValueError:
        raise ValidationError("url is not a valid URL", param="url") from None
    expected = f"{host}" if port is None else f"{host}:{port}"
    if (
        parts.scheme not in ("http", "https")
        or parts.username is not None
        or parts.password is not None
        or parts.hostname != host
        or (port is not None and url_port != port)
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValidationError(
            f"url must be http(s)://{expected}{'' if port else '[:port]'}: the address the instance has", param="url"
        )


def register_agent(agent: Principal, instance_id: str, url: str, gpus: list[dict[str, Any]]) -> dict[str, Any]:
    contract = _agent_contract(agent, instance_id, RUNNING)
    _check_agent_url(url, *agent_address(contract))
    # a restarted agent registers again: what an admin set for it stays
    previous = get_or_none(GpuAgentRecord, GpuAgentRecord.key(instance_id), "META")
    kept = previous if previous is not None and previous.contract_id == contract.contract_id else None
    gpu_type = catalog.ec2_gpu_types().get(contract.instance_type or "")
    moment = now()
    agent_liveness.set_index_keys(
        GpuAgentRecord(
            GpuAgentRecord.key(instance_id),
            instance_id=instance_id,
            url=url,
            owner_id=contract.user_id,
            contract_id=contract.contract_id,
            gpus=gpus,
            registered_at=moment,
            heartbeat_at=moment,
            weight=int(kept.weight) if kept else (gpu_type.gpu_count if gpu_type else 1),
            shared=bool(kept and kept.shared),
            expires_at_epoch=int((moment + timedelta(seconds=HEARTBEAT_GRACE_S)).timestamp()),
        )
    ).save()
    status_updates.instance_changed(contract.user_id, instance_id, contract.contract_id, "online")
    return {"instance_id": instance_id, "registered": True, "heartbeat_interval_s": HEARTBEAT_GRACE_S // 3}


def heartbeat(agent: Principal, instance_id: str, connections: int, load: float, response_time_ms: float) -> None:
    """Loads come from the agent itself (its contract's credential), never from anyone else."""
    contract, record = _own(agent, instance_id, RUNNING)
    moment = now()
    expires = int((moment + timedelta(seconds=HEARTBEAT_GRACE_S)).timestamp())
    live_key = GpuAgentRecord.live_sort_key(expires, instance_id)
    try:
        record.update(
            actions=[
                GpuAgentRecord.connections.set(connections),
                GpuAgentRecord.load.set(load),
                GpuAgentRecord.response_time_ms.set(response_time_ms),
                GpuAgentRecord.heartbeat_at.set(moment),
                GpuAgentRecord.expires_at_epoch.set(expires),
                GpuAgentRecord.gsi1sk.set(live_key),
                GpuAgentRecord.gsi2sk.set(live_key),
                # if_not_exists: a record from before these keys gets one; an admin's sharing is never undone here
                GpuAgentRecord.gsi2pk.set(
                    GpuAgentRecord.gsi2pk | GpuAgentRecord.reach_key(record.owner_id, bool(record.shared))
                ),
            ],
            condition=GpuAgentRecord.contract_id == contract.contract_id,
        )  # not one deregistered meanwhile
    except UpdateError as error:
        if not refused_by_condition(error):
            raise
        raise NotFoundError(f"no agent {instance_id!r}", param="instance_id") from error


def _own(agent: Principal, instance_id: str, *statuses: str) -> tuple[GpuContractRecord, GpuAgentRecord]:
    """The agent credential's contract (in one of `statuses`) and the live agent record it registered."""
    contract = _agent_contract(agent, instance_id, *statuses)
    record = _agent(instance_id)
    if record.contract_id != contract.contract_id:
        raise NotFoundError(f"no agent {instance_id!r}", param="instance_id")
    return contract, record


def own_agent(agent: Principal, instance_id: str) -> GpuAgentRecord:
    """The live agent record a running contract's credential speaks for (its other calls beyond heartbeats)."""
    return _own(agent, instance_id, RUNNING)[1]


def deregister_agent(agent: Principal, instance_id: str) -> None:
    contract, record = _own(agent, instance_id, RUNNING, TERMINATING)  # an agent stops as its instance shuts down
    record.delete()
    status_updates.instance_changed(contract.user_id, instance_id, contract.contract_id, "offline")


def configure_agent(instance_id: str, shared: bool | None, weight: int | None) -> dict[str, Any]:
    """An admin's choice: share an agent with every user's untargeted requests, or weight it."""
    record = _agent(instance_id)
    actions: list[Action] = []
    if shared is not None:
        actions += [
            GpuAgentRecord.shared.set(shared),
            GpuAgentRecord.gsi2pk.set(GpuAgentRecord.reach_key(record.owner_id, shared)),
        ]
    if weight is not None:
        actions.append(GpuAgentRecord.weight.set(weight))
    if actions:
        record.update(actions=actions)
    return {"instance_id": instance_id, "shared": bool(record.shared), "weight": int(record.weight)}


def forget_agent(instance_id: str) -> None:
    GpuAgentRecord(GpuAgentRecord.key(instance_id), "META").delete()


def _agent(instance_id: str) -> GpuAgentRecord:
    record = get_or_404(
        GpuAgentRecord,
        GpuAgentRecord.key(instance_id),
        "META",
        missing=f"no agent {instance_id!r}",
        param="instance_id",
    )
    if record.expires_at_epoch <= now().timestamp():  # TTL deletes lazily: check on read
        raise NotFoundError(f"agent {instance_id!r} stopped heartbeating", param="instance_id")
    return record


def count_proxied(instance_id: str) -> None:
    """One more request went through the proxy to this agent (`total_connections`)."""
    try:
        GpuAgentRecord(GpuAgentRecord.key(instance_id), "META").update(
            actions=[GpuAgentRecord.total_connections.add(1)], condition=GpuAgentRecord.pk.exists()
        )
    except UpdateError as error:
        if not refused_by_condition(error):
            raise  # else: deregistered meanwhile, nothing to count


def own_agent_at(caller: Principal, target_url: str) -> tuple[str, str]:
    """AIServe.Farm's proxy names its target by URL; it is honoured only when it is the address of
    one of the caller's own live agents (the original forwards any URL: server-side request forgery).
    Answers (instance id, path with query). Decided from the URL alone, before anything connects."""
    try:
        parts = urlsplit(target_url)
        origin = (parts.scheme, parts.hostname, parts.port)
    except ValueError:
        raise ValidationError("target_url is not a valid URL", param="target_url") from None
    for record in own_records(caller.id):
        agent = urlsplit(record.url)
        if (agent.scheme, agent.hostname, agent.port) == origin and parts.username is None and parts.password is None:
            return record.instance_id, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    raise ForbiddenError("target_url must be the address of one of your registered GPU agents", param="target_url")


def _reachable(caller: Principal, record: GpuAgentRecord) -> bool:
    """What a caller's untargeted requests may reach: its own agents and the shared ones."""
    return record.owner_id == caller.id or bool(record.shared)


def live_agents(
    caller: Principal, limit: int = agent_liveness.MAX_AGENTS_READ, cursor: str | None = None
) -> tuple[list[AgentLoad], str | None]:
    """The live agents the caller may see (reachable ones; for an admin every one, a page of
    `limit` after `cursor`) and the cursor of the next page (None: no more)."""
    if not caller.is_admin:
        return [_load_of(record) for record in reachable_records(caller.id)], None
    records = live_records(limit + 1, cursor)
    more = len(records) > limit
    return [_load_of(record) for record in records[:limit]], records[limit - 1].gsi1sk if more else None


def agent_load(caller: Principal, instance_id: str) -> AgentLoad:
    record = _agent(instance_id)
    if not (caller.is_admin or _reachable(caller, record)):
        raise NotFoundError(f"no agent {instance_id!r}", param="instance_id")  # someone else's: not even its existence
    return _load_of(record)


def _state() -> LoadBalancerRecord:
    state = get_or_none(LoadBalancerRecord, "LOADBALANCER", "STRATEGY")
    return state or LoadBalancerRecord(strategy=DEFAULT_STRATEGY, rotation=0)


def get_strategy() -> str:
    return _state().strategy


def set_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValidationError(
            f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}", param="strategy"
        )
    LoadBalancerRecord("LOADBALANCER", "STRATEGY").update(actions=[LoadBalancerRecord.strategy.set(strategy)])
    return strategy


def _next_turn(caller: Principal) -> int:
    """An atomic counter per caller (a caller rotates over the agents it reaches): concurrent
    proxies each get their own turn, and no one item takes every user's requests."""
    record = LoadBalancerRecord("LOADBALANCER", LoadBalancerRecord.rotation_key(caller.id))
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


def pick_agent(caller: Principal) -> AgentLoad:
    """An untargeted request goes to one of the caller's own or shared agents (an admin's too:
    nobody's prompts go to another user's instance unless an admin shared it)."""
    agents = [_load_of(record) for record in reachable_records(caller.id)]
    strategy = get_strategy()
    turn = _next_turn(caller) if strategy in ("round_robin", "weighted_round_robin") and agents else 0
    return choose(strategy, agents, turn)
