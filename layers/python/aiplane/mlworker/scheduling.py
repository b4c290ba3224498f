"""The queue order, as plain functions over plain values (no I/O).

Order: effective priority level first (higher runs first), then the user's fair-share factor
(higher first, see `fairshare`), then FIFO by submission time. A task's effective priority ages:
it gains one level per `AGING_INTERVAL_S` spent waiting, capped at `MAX_PRIORITY`, so a stream of
high-priority work cannot starve old low-priority tasks forever (the priority-aging idea of
Slurm's multifactor plugin). Which task of that order a worker gets is `backfill.plan_lease`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

MIN_PRIORITY = 1
MAX_PRIORITY = 10
DEFAULT_PRIORITY = 5
AGING_INTERVAL_S = 600.0


@dataclass(frozen=True)
class Demand:
    """What a queued task asks for."""

    task_id: str
    priority: int
    submitted_at: datetime
    gpu: int = 0  # per node
    cpu: int = 0
    memory_gb: int = 0
    user_id: str = ""
    node_count: int = 1
    walltime_s: float = 3600.0
    reservation_id: str | None = None
    preemptible: bool = False


@dataclass(frozen=True)
class Capacity:
    """What a worker has free right now."""

    gpu: int
    cpu: int
    memory_gb: int

    def fits(self, demand: Demand) -> bool:
        return demand.gpu <= self.gpu and demand.cpu <= self.cpu and demand.memory_gb <= self.memory_gb


def aged_priority(priority: int, submitted_at: datetime, now: datetime) -> float:
    waited_s = max(0.0, (now - submitted_at).total_seconds())
    return min(float(MAX_PRIORITY), priority + waited_s / AGING_INTERVAL_S)


def aging_origin(priority: int, submitted_at: datetime) -> float:
    """The epoch second from which a task's aged priority counts, as if submitted at priority 0:
    `aged_priority = min(MAX_PRIORITY, (now - origin) / AGING_INTERVAL_S)`. It does not move with
    time, so an index sorted by it lists the queue in aged-priority order (the queue index, gsi4)."""
    return submitted_at.timestamp() - priority * AGING_INTERVAL_S


def queue_order(
    demands: Iterable[Demand], now: datetime, fair_share: Mapping[str, float] | None = None
) -> list[Demand]:
    """`fair_share`: each user's factor in (0, 1]; a user missing from it counts as 1 (no recent usage)."""
    shares = fair_share or {}

    def key(d: Demand) -> tuple:
        level = math.floor(aged_priority(d.priority, d.submitted_at, now) + 1e-9)
        return (-level, -shares.get(d.user_id, 1.0), d.submitted_at, d.task_id)

    return sorted(demands, key=key)


def free_capacity(total: Capacity, running: Iterable[Demand]) -> Capacity:
    running = list(running)
    return Capacity(
        gpu=total.gpu - sum(d.gpu for d in running),
        cpu=total.cpu - sum(d.cpu for d in running),
        memory_gb=total.memory_gb - sum(d.memory_gb for d in running),
    )
