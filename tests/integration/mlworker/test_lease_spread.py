"""Racing leasers spread over the head of the queue (`cluster.spread`): workers deciding from the
same snapshot pick different tasks among the first eligible ones, so their conditional writes do
not all collide on the head; a worker alone able to start the head still takes the head."""

from __future__ import annotations

from datetime import UTC, datetime

from aiplane.mlworker import cluster
from aiplane.mlworker.workers import LEASE_TTL_S


def decide_all(worker_ids, attempt):
    now = datetime.now(UTC)  # one moment (one rotation slot) for every worker: they decide at once
    return {worker_id: cluster.decide(worker_id, now, attempt=attempt) for worker_id in worker_ids}


def test_racing_workers_take_the_first_eligible_tasks_one_each_and_all_commit(register, submit):
    worker_ids = [f"gpu-{index}" for index in range(4)]
    for worker_id in worker_ids:
        register(worker_id, gpu_count=4)
    submitted = [submit(f"job-{index}", priority=10 - index, gpu=1)["id"] for index in range(6)]
    # Without spreading, every worker decides for the head: all but one would lose the write.
    assert {decision.task_id for decision, _ in decide_all(worker_ids, None).values()} == {submitted[0]}
    decided = decide_all(worker_ids, 0)
    assert sorted(decision.task_id for decision, _ in decided.values()) == sorted(
        submitted[:4]
    )  # the top 4, in priority
    for decision, state in decided.values():
        task = cluster.tasks.get_task(decision.task_id)
        cluster.commit_lease(task, decision, state, LEASE_TTL_S)  # no lost race: each wrote its own task
    assert [cluster.tasks.get_task(task_id).status for task_id in submitted] == ["preparing"] * 4 + ["queued"] * 2


def test_a_worker_that_lost_moves_one_further(register, submit):
    for worker_id in ("gpu-0", "gpu-1"):
        register(worker_id, gpu_count=4)
    first, second, _ = (submit(f"job-{index}", priority=9 - index, gpu=1)["id"] for index in range(3))
    now = datetime.now(UTC)
    picks = {attempt: cluster.decide("gpu-0", now, attempt=attempt)[0].task_id for attempt in (0, 1)}
    assert set(picks.values()) == {first, second}


def test_a_worker_alone_able_to_start_the_head_takes_the_head(register, submit, lease):
    register("gpu-0", gpu_count=1)
    register("gpu-1", gpu_count=1)
    submit("fills-gpu-0", priority=10, gpu=1)
    assert lease("gpu-0")["job_name"] == "fills-gpu-0"
    head = submit("head", priority=9, gpu=1)["id"]
    submit("next", priority=8, gpu=1)
    for attempt in range(4):  # gpu-1 is the only worker with a free GPU, whatever its rank and tries
        assert cluster.decide("gpu-1", attempt=attempt)[0].task_id == head
