"""The scheduling decision: priority, FIFO, fit and aging, with plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiplane.mlworker.scheduling import (
    AGING_INTERVAL_S,
    MAX_PRIORITY,
    Capacity,
    Demand,
    aged_priority,
    free_capacity,
    pick_next,
    queue_order,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ROOMY = Capacity(gpu=8, cpu=64, memory_gb=512)


def demand(task_id: str, priority: int = 5, age_s: float = 0, **resources: int) -> Demand:
    return Demand(task_id=task_id, priority=priority, submitted_at=NOW - timedelta(seconds=age_s), **resources)


def test_higher_priority_runs_first():
    order = queue_order([demand("low", 2), demand("high", 9), demand("mid", 5)], NOW)
    assert [d.task_id for d in order] == ["high", "mid", "low"]


def test_equal_priority_is_first_in_first_out():
    order = queue_order([demand("second", age_s=10), demand("first", age_s=20), demand("third", age_s=1)], NOW)
    assert [d.task_id for d in order] == ["first", "second", "third"]


def test_waiting_raises_effective_priority_up_to_the_cap():
    assert aged_priority(3, NOW, NOW) == 3
    assert aged_priority(3, NOW - timedelta(seconds=2 * AGING_INTERVAL_S), NOW) == 5
    assert aged_priority(3, NOW - timedelta(days=30), NOW) == MAX_PRIORITY


def test_old_low_priority_task_overtakes_a_fresh_higher_one():
    old_low = demand("old-low", priority=2, age_s=5 * AGING_INTERVAL_S)  # aged to 7
    fresh = demand("fresh", priority=6)
    assert [d.task_id for d in queue_order([fresh, old_low], NOW)] == ["old-low", "fresh"]


def test_picks_the_first_task_that_fits_the_free_gpus():
    big = demand("big", priority=9, gpu=8)
    small = demand("small", priority=5, gpu=1)
    assert pick_next([big, small], Capacity(gpu=2, cpu=64, memory_gb=512), NOW).task_id == "small"
    assert pick_next([big, small], ROOMY, NOW).task_id == "big"


def test_cpu_and_memory_must_fit_too():
    hungry = demand("hungry", cpu=16, memory_gb=1024)
    assert pick_next([hungry], ROOMY, NOW) is None
    assert pick_next([hungry], Capacity(gpu=0, cpu=16, memory_gb=1024), NOW).task_id == "hungry"


def test_nothing_queued_means_nothing_picked():
    assert pick_next([], ROOMY, NOW) is None


def test_free_capacity_subtracts_running_tasks():
    running = [demand("a", gpu=3, cpu=8, memory_gb=64), demand("b", gpu=1, cpu=4, memory_gb=32)]
    assert free_capacity(ROOMY, running) == Capacity(gpu=4, cpu=52, memory_gb=416)
