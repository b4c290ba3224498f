"""Lease selection over plain snapshots: fit, reservations, quotas, EASY backfill, gangs, preemption, tenancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiplane.mlworker.backfill import (
    EASY,
    GREEDY,
    Hold,
    Limits,
    Node,
    Running,
    free_on,
    place_reservation,
    plan_lease,
    shadow_of,
    usable_by,
)
from aiplane.mlworker.scheduling import Capacity, Demand

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T = NOW.timestamp()
HOUR = 3600.0


def node(
    worker_id: str = "w1",
    gpu: int = 4,
    running: tuple = (),
    holds: tuple = (),
    owner_id: str | None = None,
    shared: bool = True,
) -> Node:
    return Node(
        worker_id,
        Capacity(gpu=gpu, cpu=64, memory_gb=512),
        tuple(running),
        tuple(holds),
        owner_id=owner_id,
        shared=shared,
    )


def task(task_id: str, gpu: int = 1, priority: int = 5, walltime_s: float = HOUR, age_s: float = 0, **fields) -> Demand:
    return Demand(
        task_id=task_id,
        priority=priority,
        submitted_at=NOW - timedelta(seconds=age_s),
        gpu=gpu,
        walltime_s=walltime_s,
        **fields,
    )


def running(task_id: str, gpu: int = 1, ends_in: float = HOUR, **fields) -> Running:
    return Running(task_id=task_id, gpu=gpu, ends_at=T + ends_in, **fields)


def test_reserved_gpus_are_free_only_inside_their_reservation():
    held = node(holds=(Hold("r1", 4, T + HOUR),))
    assert free_on(held).gpu == 0
    assert free_on(held, reservation_id="r1").gpu == 4
    assert plan_lease("w1", [held], [task("other", gpu=4)], NOW) is None
    assert plan_lease("w1", [held], [task("mine", gpu=4, reservation_id="r1")], NOW).task_id == "mine"


def test_tasks_inside_a_reservation_use_up_its_share_only():
    busy = node(running=(running("a", 3, reservation_id="r1"),), holds=(Hold("r1", 3, T + HOUR),))
    assert free_on(busy).gpu == 1 and free_on(busy, reservation_id="r1").gpu == 0
    assert free_on(busy, at=T + 2 * HOUR).gpu == 4  # the hold and the task are over by then


def test_greedy_lets_small_tasks_starve_the_head_but_easy_does_not():
    # 4 GPUs, 2 busy for an hour; the head needs 4, a 1-GPU task of 2 hours waits behind it.
    cluster = [node(running=(running("long", 2, ends_in=HOUR),))]
    queue = [task("head", gpu=4, priority=9), task("small-long", gpu=1, walltime_s=2 * HOUR)]
    assert plan_lease("w1", cluster, queue, NOW, policy=GREEDY).task_id == "small-long"
    assert plan_lease("w1", cluster, queue, NOW, policy=EASY) is None
    assert shadow_of(queue[0], cluster, T).at == T + HOUR


def test_easy_backfills_tasks_that_end_before_the_head_starts():
    cluster = [node(running=(running("long", 2, ends_in=HOUR),))]
    queue = [task("head", gpu=4, priority=9), task("too-long", walltime_s=2 * HOUR), task("short", walltime_s=HOUR / 2)]
    assert plan_lease("w1", cluster, queue, NOW).task_id == "short"


def test_easy_backfills_into_what_the_head_leaves_free():
    cluster = [node(gpu=8, running=(running("long", 6, ends_in=HOUR),))]
    queue = [task("head", gpu=4, priority=9), task("extra", gpu=2, walltime_s=10 * HOUR)]
    assert plan_lease("w1", cluster, queue, NOW).task_id == "extra"  # at the shadow time 8 - 4 >= 2


def test_backfill_runs_freely_on_workers_outside_the_heads_reservation():
    cluster = [node("w1", running=(running("long", 2),)), node("w2", gpu=2)]
    queue = [task("head", gpu=4, priority=9), task("small", walltime_s=10 * HOUR)]
    assert plan_lease("w2", cluster, queue, NOW).task_id == "small"
    assert plan_lease("w1", cluster, queue, NOW) is None


def test_a_head_that_fits_no_worker_does_not_block():
    queue = [task("huge", gpu=8, priority=9), task("small", walltime_s=10 * HOUR)]
    assert plan_lease("w1", [node()], queue, NOW).task_id == "small"


def test_gang_needs_all_its_nodes_now():
    cluster = [node("w1"), node("w2", running=(running("busy", 3),)), node("w3")]
    gang = task("gang", gpu=2, node_count=3)
    assert plan_lease("w1", cluster, [gang], NOW, policy=GREEDY) is None
    decision = plan_lease("w1", cluster, [task("gang", gpu=2, node_count=2)], NOW)
    assert decision.workers == ("w1", "w2") or decision.workers == ("w1", "w3")
    assert decision.workers == ("w1", "w3")


def test_a_user_at_their_gpu_limit_waits_while_others_run():
    cluster = [node(running=(running("a", 2, user_id="alice"),))]
    queue = [task("alice-more", gpu=1, user_id="alice", age_s=60), task("bob", gpu=1, user_id="bob")]
    limits = Limits(gpus_per_user=2)
    assert plan_lease("w1", cluster, queue, NOW, limits=limits).task_id == "bob"
    assert (
        plan_lease("w1", cluster, queue, NOW, limits=Limits(gpus_per_user=2, exempt_users=frozenset({"alice"}))).task_id
        == "alice-more"
    )


def test_preemption_takes_gpus_from_lower_priority_preemptible_tasks_only():
    victims = (running("low", 2, priority=2, preemptible=True), running("keep", 2, priority=2))
    cluster = [node(running=victims)]
    urgent = task("urgent", gpu=2, priority=9)
    decision = plan_lease("w1", cluster, [urgent], NOW, limits=Limits(preemption_margin=2))
    assert decision.task_id == "urgent" and [v.task_id for v in decision.victims] == ["low"]
    assert plan_lease("w1", cluster, [urgent], NOW) is None  # preemption off
    assert plan_lease("w1", cluster, [urgent], NOW, limits=Limits(preemption_margin=8)) is None  # lead too small
    assert plan_lease("w1", cluster, [task("big", gpu=4, priority=9)], NOW, limits=Limits(preemption_margin=2)) is None


def test_a_users_worker_takes_only_its_owners_tasks_and_a_shared_one_takes_everyones():
    queue = [task("bob-first", user_id="bob", age_s=60), task("alice", user_id="alice")]
    alices = node("alice-host", owner_id="alice", shared=False)
    assert plan_lease("alice-host", [alices], queue, NOW).task_id == "alice"  # bob's older task is not hers to run
    assert plan_lease("alice-host", [alices], queue[:1], NOW) is None
    assert plan_lease("pool", [node("pool", owner_id="admin", shared=True)], queue, NOW).task_id == "bob-first"
    assert plan_lease("w1", [node(owner_id=None, shared=False)], queue, NOW) is None  # no owner recorded: nothing


def test_a_gang_takes_only_workers_that_admit_its_owner():
    cluster = [
        node("alice-1", owner_id="alice", shared=False),
        node("bob-1", owner_id="bob", shared=False),
        node("pool", owner_id="admin", shared=True),
    ]
    gang = [task("alice-gang", gpu=2, node_count=2, user_id="alice")]
    assert plan_lease("alice-1", cluster, gang, NOW).workers == ("alice-1", "pool")
    assert plan_lease("bob-1", cluster, gang, NOW) is None
    three = [task("alice-gang", gpu=2, node_count=3, user_id="alice")]
    assert plan_lease("alice-1", cluster, three, NOW) is None  # bob's host never counts as one of its nodes


def test_another_users_head_neither_runs_nor_preempts_on_a_host_it_may_not_use():
    bobs = node(
        "bob-1",
        owner_id="bob",
        shared=False,
        running=(running("bob-low", 4, priority=1, preemptible=True, user_id="bob"),),
    )
    urgent = task("alice-urgent", gpu=4, priority=10, user_id="alice")
    assert plan_lease("bob-1", [bobs], [urgent], NOW, limits=Limits(preemption_margin=1)) is None
    alices = node("alice-1", owner_id="alice", shared=False, running=(running("alice-busy", 4, ends_in=HOUR),))
    # alice's waiting task is the head on her host only: a short bob task still backfills bob's own host.
    cluster = [alices, node("bob-2", owner_id="bob", shared=False)]
    queue = [
        task("alice-big", gpu=4, user_id="alice", age_s=60),
        task("bob-long", gpu=4, walltime_s=9 * HOUR, user_id="bob"),
    ]
    assert plan_lease("bob-2", cluster, queue, NOW).task_id == "bob-long"


def test_reservations_are_placed_on_workers_that_admit_their_owner_only():
    cluster = [node("bob-1", gpu=8, owner_id="bob", shared=False), node("pool", gpu=2)]
    assert place_reservation(4, 1, None, usable_by(cluster, "alice")) is None
    assert place_reservation(4, 1, None, usable_by(cluster, "bob")) == ["bob-1"]
    assert place_reservation(2, 1, None, usable_by(cluster, "alice")) == ["pool"]
