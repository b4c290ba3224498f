"""The queue order: priority, fair share, FIFO and aging, with plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiplane.mlworker.fairshare import decayed, factors_of
from aiplane.mlworker.scheduling import (
    AGING_INTERVAL_S,
    MAX_PRIORITY,
    Capacity,
    Demand,
    aged_priority,
    free_capacity,
    queue_order,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ROOMY = Capacity(gpu=8, cpu=64, memory_gb=512)


def demand(task_id: str, priority: int = 5, age_s: float = 0, **resources) -> Demand:
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


def test_free_capacity_subtracts_running_tasks():
    running = [demand("a", gpu=3, cpu=8, memory_gb=64), demand("b", gpu=1, cpu=4, memory_gb=32)]
    assert free_capacity(ROOMY, running) == Capacity(gpu=4, cpu=52, memory_gb=416)


def test_fair_share_orders_equal_priorities_by_recent_usage():
    heavy, light = demand("heavy", age_s=20, user_id="heavy"), demand("light", age_s=10, user_id="light")
    order = queue_order([heavy, light], NOW, {"heavy": 0.2, "light": 0.9})
    assert [d.task_id for d in order] == ["light", "heavy"]
    higher = demand("higher", priority=6, user_id="heavy")
    assert queue_order([light, higher], NOW, {"heavy": 0.01})[0].task_id == "higher"  # priority comes first


def test_fair_share_factor_is_slurms_classic_formula():
    assert factors_of({"a": 0.0, "b": 0.0}) == {"a": 1.0, "b": 1.0}
    shares = factors_of({"a": 50.0, "b": 50.0})  # each used exactly their share: 2^-1
    assert shares == {"a": 0.5, "b": 0.5}
    skewed = factors_of({"a": 100.0, "b": 0.0})
    assert skewed["a"] == 0.25 and skewed["b"] == 1.0
    assert decayed(100.0, 0, 7200, half_life=3600) == 25.0
