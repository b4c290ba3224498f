"""The first eligible tasks racing workers spread over (`backfill.plan_leases`), and which one a
worker tries (`cluster.spread`): plain values, no I/O."""

from __future__ import annotations

from datetime import timedelta

from aiplane.mlworker.backfill import Limits, plan_lease, plan_leases
from aiplane.mlworker.cluster import SPREAD_ROTATE_S, spread
from tests.unit.mlworker.test_backfill import NOW, node, running, task


def test_candidates_are_what_plan_lease_hands_out_one_after_the_other():
    queue = [task("a", priority=9), task("big", gpu=8, priority=8), task("b", priority=7), task("c", priority=6)]
    found = plan_leases("w1", [node("w1"), node("w2")], queue, NOW, count=3)
    assert [d.task_id for d in found] == ["a", "b", "c"]  # "big" fits no worker: never a candidate
    assert found[0] == plan_lease("w1", [node("w1"), node("w2")], queue, NOW)
    assert plan_leases("w1", [node("w1")], [], NOW, count=3) == []


def test_a_users_candidates_together_stay_within_their_gpu_limit():
    queue = [task("u1", gpu=2, user_id="u"), task("u2", gpu=2, user_id="u"), task("v1", gpu=2, user_id="v")]
    found = plan_leases(
        "w1", [node("w1", gpu=8), node("w2", gpu=8)], queue, NOW, limits=Limits(gpus_per_user=2), count=3
    )
    assert [d.task_id for d in found] == ["u1", "v1"]  # racing workers must not start u1 and u2 at once


def test_a_preemption_is_only_ever_the_one_candidate():
    busy = node("w1", gpu=4, running=(running("victim", gpu=4, priority=1, preemptible=True, ends_in=10 * 3600),))
    head = task("urgent", gpu=4, priority=10, age_s=600)
    first = task("small", gpu=0, priority=10, age_s=1200)
    found = plan_leases("w1", [busy], [first, head], NOW, limits=Limits(preemption_margin=2), count=4)
    assert [(d.task_id, d.victims) for d in found] == [("small", ())]  # no preemption behind another candidate
    found = plan_leases("w1", [busy], [head], NOW, limits=Limits(preemption_margin=2), count=4)
    assert [(d.task_id, len(d.victims)) for d in found] == [("urgent", 1)]


def test_able_workers_take_one_candidate_each_and_a_lone_one_takes_the_head():
    candidates = plan_leases("w1", [node("w1"), node("w2"), node("w3")], [task(str(i)) for i in range(5)], NOW, count=3)
    slot = NOW - timedelta(seconds=NOW.timestamp() % SPREAD_ROTATE_S)  # rotation 0 mod 3 for this test
    slot -= timedelta(seconds=SPREAD_ROTATE_S * (int(slot.timestamp() // SPREAD_ROTATE_S) % 3))
    picks = {worker: spread(worker, candidates, ["w1", "w2", "w3"], slot, 0).task_id for worker in ("w1", "w2", "w3")}
    assert picks == {"w1": "0", "w2": "1", "w3": "2"}
    assert spread("w1", candidates, ["w1", "w2", "w3"], slot, 1).task_id == "1"  # lost once: one further
    later = slot + timedelta(seconds=SPREAD_ROTATE_S)
    assert (
        spread("w3", candidates, ["w1", "w2", "w3"], later, 0).task_id == "0"
    )  # ranks rotate: nobody skips the head for good
    assert all(spread("w1", candidates, ["w1"], slot, attempt).task_id == "0" for attempt in range(3))
