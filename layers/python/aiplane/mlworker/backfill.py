"""Lease selection over a snapshot of the cluster, as plain functions (no I/O).

A worker asking for work gets the first task in queue order (`scheduling.queue_order`) that it
may start now:
- **fit**: the task's GPUs, CPU cores and memory fit the worker's free capacity; a gang
  (`node_count > 1`) needs that on the asking worker and on `node_count - 1` other workers.
- **reservations**: GPUs a live reservation holds on a worker are free only to tasks naming that
  reservation, and such a task runs inside its reservation's GPUs only.
- **tenancy**: a task runs only on workers that admit its owner (`tenancy.admits`: the owner's
  own, or shared ones), every rank of a gang included; its head reservation counts those only.
- **quota**: a user's running GPUs plus the task's stay within the per-user limit (admins exempt).
- **EASY backfill** (policy `easy`): the first task that cannot start now (the head) gets a
  start-time reservation: the earliest time at which, by the walltimes of the running tasks,
  enough workers are free for it (its shadow time), on those workers. A later task may start
  ahead of it on those workers only if it ends by the shadow time or fits in what the head leaves
  free there; on other workers it may start at once. The head therefore starts by its shadow time.
  Policy `greedy` is plain first fit (the head can starve).
- **preemption**: when the head cannot start now and fits on the asking worker once some of its
  running preemptible tasks are gone, whose priority its effective priority exceeds by the margin,
  those tasks are its victims (lowest priority first, then the latest to finish).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiplane.mlworker import tenancy
from aiplane.mlworker.scheduling import Capacity, Demand, aged_priority

EASY, GREEDY = "easy", "greedy"
POLICIES = (EASY, GREEDY)


@dataclass(frozen=True)
class Running:
    """A running task's share of one worker."""

    task_id: str
    gpu: int
    ends_at: float  # epoch seconds: start + walltime
    cpu: int = 0
    memory_gb: int = 0
    user_id: str = ""
    priority: int = 0
    reservation_id: str | None = None
    preemptible: bool = False
    node_count: int = 1


@dataclass(frozen=True)
class Hold:
    """A live reservation's GPUs on one worker."""

    reservation_id: str
    gpu: int
    ends_at: float


@dataclass(frozen=True)
class Node:
    worker_id: str
    total: Capacity
    running: tuple[Running, ...] = ()
    holds: tuple[Hold, ...] = ()
    gpu_type: str | None = None
    owner_id: str | None = None  # whose work it takes, unless shared (`tenancy`)
    shared: bool = False


@dataclass(frozen=True)
class Decision:
    task_id: str
    workers: tuple[str, ...]  # by rank: the asking worker is rank 0
    victims: tuple[Running, ...] = ()


@dataclass(frozen=True)
class Limits:
    gpus_per_user: int | None = None
    exempt_users: frozenset[str] = field(default_factory=frozenset)
    preemption_margin: float | None = None  # None: no preemption


def free_on(node: Node, at: float | None = None, reservation_id: str | None = None) -> Capacity:
    """What `node` has free now (`at` None) or at time `at` (tasks and holds ending by then are gone):
    for tasks outside reservations, or inside `reservation_id`'s hold."""
    running = [r for r in node.running if at is None or r.ends_at > at]
    holds = [h for h in node.holds if at is None or h.ends_at > at]
    cpu = node.total.cpu - sum(r.cpu for r in running)
    memory = node.total.memory_gb - sum(r.memory_gb for r in running)
    inside: defaultdict[str, int] = defaultdict(int)
    for r in running:
        if r.reservation_id:
            inside[r.reservation_id] += r.gpu
    held = {h.reservation_id: h.gpu for h in holds}
    if reservation_id is not None:
        return Capacity(gpu=max(0, held.get(reservation_id, 0) - inside[reservation_id]), cpu=cpu, memory_gb=memory)
    outside = sum(r.gpu for r in running if r.reservation_id not in held)
    reserved = sum(max(gpu, inside[rid]) for rid, gpu in held.items())
    return Capacity(gpu=node.total.gpu - outside - reserved, cpu=cpu, memory_gb=memory)


def _minus(free: Capacity, demand: Demand) -> Capacity:
    return Capacity(free.gpu - demand.gpu, free.cpu - demand.cpu, free.memory_gb - demand.memory_gb)


def usable_by(nodes: Sequence[Node], user_id: str | None) -> list[Node]:
    """The workers that may run `user_id`'s work (`tenancy.admits`)."""
    return [n for n in nodes if tenancy.admits(n.owner_id, n.shared, user_id)]


def place_now(demand: Demand, asking: Node, nodes: Sequence[Node]) -> tuple[str, ...] | None:
    """The workers (asking one first) that can start `demand` now, or None."""
    if not free_on(asking, None, demand.reservation_id).fits(demand):
        return None
    others = sorted(
        n.worker_id
        for n in nodes
        if n.worker_id != asking.worker_id and free_on(n, None, demand.reservation_id).fits(demand)
    )
    if len(others) < demand.node_count - 1:
        return None
    return (asking.worker_id, *others[: demand.node_count - 1])


@dataclass(frozen=True)
class Shadow:
    """The head's start-time reservation: when, and what each of its workers has left then."""

    at: float
    left: Mapping[str, Capacity]


def shadow_of(demand: Demand, nodes: Sequence[Node], now: float) -> Shadow | None:
    """The earliest time enough workers are free for `demand` (None: never, on these workers)."""
    ends = {
        max(end, now + 1) for n in nodes for end in [*(r.ends_at for r in n.running), *(h.ends_at for h in n.holds)]
    }
    for moment in [now, *sorted(ends)]:
        at = None if moment == now else moment
        fitting = sorted(
            (n for n in nodes if free_on(n, at, demand.reservation_id).fits(demand)), key=lambda n: n.worker_id
        )
        if len(fitting) >= demand.node_count:
            chosen = fitting[: demand.node_count]
            return Shadow(moment, {n.worker_id: _minus(free_on(n, at, demand.reservation_id), demand) for n in chosen})
    return None


def _may_backfill(demand: Demand, workers: tuple[str, ...], shadow: Shadow | None, now: float) -> bool:
    if shadow is None or demand.reservation_id is not None:
        return True  # no head waiting, or the task runs inside GPUs reserved for it
    if now + demand.walltime_s <= shadow.at:
        return True  # ends before the head starts
    return all(w not in shadow.left or shadow.left[w].fits(demand) for w in workers)


def _victims(demand: Demand, asking: Node, effective: float, margin: float) -> tuple[Running, ...] | None:
    candidates = sorted(
        (
            r
            for r in asking.running
            if r.preemptible and r.reservation_id is None and r.node_count == 1 and effective >= r.priority + margin
        ),
        key=lambda r: (r.priority, -r.ends_at),
    )
    chosen: list[Running] = []
    for victim in candidates:
        chosen.append(victim)
        rest = Node(asking.worker_id, asking.total, tuple(r for r in asking.running if r not in chosen), asking.holds)
        if free_on(rest, None, demand.reservation_id).fits(demand):
            return tuple(chosen)
    return None


def user_gpus(nodes: Sequence[Node]) -> dict[str, int]:
    used: dict[str, int] = defaultdict(int)
    for node in nodes:
        for r in node.running:
            used[r.user_id] += r.gpu
    return used


def plan_lease(
    asking_id: str,
    nodes: Sequence[Node],
    queue: Sequence[Demand],
    now: datetime,
    *,
    policy: str = EASY,
    limits: Limits = Limits(),
) -> Decision | None:
    """What the worker `asking_id` should start now (`queue` in queue order; `nodes` the workers
    that take work, the asking one included), or None."""
    by_id = {n.worker_id: n for n in nodes}
    asking = by_id.get(asking_id)
    if asking is None:
        return None
    epoch = now.timestamp()
    used = user_gpus(nodes)
    shadow: Shadow | None = None  # the head's start-time reservation (EASY only)
    head_found = False
    for demand in queue:
        wanted = demand.gpu * demand.node_count
        if (
            limits.gpus_per_user is not None
            and demand.user_id not in limits.exempt_users
            and used[demand.user_id] + wanted > limits.gpus_per_user
        ):
            continue  # at their limit: waits while others run
        eligible = usable_by(nodes, demand.user_id)  # a gang's other ranks, its shadow: on these only
        admitted = any(n.worker_id == asking_id for n in eligible)
        workers = place_now(demand, asking, eligible) if admitted else None
        if workers is not None and _may_backfill(demand, workers, shadow, epoch):
            return Decision(demand.task_id, workers)
        if workers is not None or head_found or demand.reservation_id is not None:
            continue
        head = shadow_of(demand, eligible, epoch)
        if head is None:
            continue  # never fits these workers: it cannot be the head
        head_found = True
        shadow = head if policy == EASY else None
        if admitted and head.at > epoch and limits.preemption_margin is not None and demand.node_count == 1:
            effective = aged_priority(demand.priority, demand.submitted_at, now)
            victims = _victims(demand, asking, effective, limits.preemption_margin)
            if victims:
                return Decision(demand.task_id, (asking_id,), victims)
    return None


def place_reservation(gpu_count: int, node_count: int, gpu_type: str | None, nodes: Sequence[Node]) -> list[str] | None:
    """`node_count` distinct workers (of `gpu_type`, when given) each with `gpu_count` GPUs free now,
    counting running tasks and other reservations; None when the shape does not fit."""
    fitting = sorted(
        (n for n in nodes if (gpu_type is None or n.gpu_type == gpu_type) and free_on(n).gpu >= gpu_count),
        key=lambda n: (free_on(n).gpu, n.worker_id),
    )  # tightest fit first: keep big holes whole
    return [n.worker_id for n in fitting[:node_count]] if len(fitting) >= node_count else None


def plan_leases(
    asking_id: str,
    nodes: Sequence[Node],
    queue: Sequence[Demand],
    now: datetime,
    *,
    policy: str = EASY,
    limits: Limits = Limits(),
    count: int = 1,
) -> list[Decision]:
    """The first `count` tasks `plan_lease` would hand the worker `asking_id` one after the other,
    each as if the ones before it had been taken (by racing workers): all decided by its rules on
    this snapshot. A preemption comes only alone, first; a user's tasks together stay within their
    GPU limit (racing workers may start all of them at once)."""
    found: list[Decision] = []
    remaining = list(queue)
    used = user_gpus(nodes)
    while len(found) < count:
        decision = plan_lease(asking_id, nodes, remaining, now, policy=policy, limits=limits)
        if decision is None or (found and decision.victims):
            break
        demand = next(d for d in remaining if d.task_id == decision.task_id)
        remaining.remove(demand)
        wanted = demand.gpu * demand.node_count
        if (
            limits.gpus_per_user is not None
            and demand.user_id not in limits.exempt_users
            and used[demand.user_id] + wanted > limits.gpus_per_user
        ):
            continue  # with the user's earlier candidates it would pass their limit
        used[demand.user_id] += wanted
        found.append(decision)
        if decision.victims:
            break
    return found
