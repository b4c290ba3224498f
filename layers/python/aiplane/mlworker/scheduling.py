"""The scheduling decision, as plain functions over plain values (no I/O).

Order: effective priority first (higher runs first), then FIFO by submission time. A task's
effective priority ages: it gains one level per `AGING_INTERVAL_S` spent waiting, capped at
`MAX_PRIORITY`, so a stream of high-priority work cannot starve old low-priority tasks forever
(the priority-aging idea of Slurm's multifactor plugin). A worker takes the first task in that
order that fits in its free GPUs, CPU cores and memory (backfill: a large task at the head does
not block smaller ones that fit now).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    gpu: int = 0
    cpu: int = 0
    memory_gb: int = 0


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


def queue_order(demands: Iterable[Demand], now: datetime) -> list[Demand]:
    return sorted(demands, key=lambda d: (-aged_priority(d.priority, d.submitted_at, now), d.submitted_at, d.task_id))


def pick_next(demands: Sequence[Demand], free: Capacity, now: datetime) -> Demand | None:
    """The task a worker with `free` capacity should run next, or None when nothing fits."""
    for demand in queue_order(demands, now):
        if free.fits(demand):
            return demand
    return None


def free_capacity(total: Capacity, running: Iterable[Demand]) -> Capacity:
    running = list(running)
    return Capacity(
        gpu=total.gpu - sum(d.gpu for d in running),
        cpu=total.cpu - sum(d.cpu for d in running),
        memory_gb=total.memory_gb - sum(d.memory_gb for d in running),
    )
