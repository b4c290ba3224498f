"""The scheduling policy through the API: reservations, EASY backfill, gangs, preemption, quotas, walltime."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from pynamodb.exceptions import TransactWriteError

from aiplane.mlworker import cluster, tasks
from aiplane.mlworker.models import ReservationRecord, TaskRecord
from aiplane.mlworker.tasks import get_task
from aiplane.mlworker.workers import get_worker
from aiplane_local.lambda_runtime import invoke
from tests.integration.mlworker.conftest import scheduled_tick
from tests.integration.mlworker.test_scheduler import report


def reserve(client, headers, **body):
    return client.post("/v1/scheduler/reservations", headers=headers, json=body)


def beat(client, admin, worker_id: str) -> dict:
    return client.post(f"/v1/scheduler/workers/{worker_id}/heartbeat", headers=admin).json()


def backdate_lease(task_id: str, seconds: float) -> None:
    """As if the task had been leased `seconds` ago."""
    task = get_task(task_id)
    task.update(actions=[TaskRecord.leased_epoch.set(int(task.leased_epoch) - int(seconds))])


@pytest.fixture
def policy(monkeypatch):
    """Set this environment's scheduling settings for one test."""

    def set_policy(**settings) -> None:
        changed = cluster.environment()._replace(**settings)
        monkeypatch.setattr(cluster, "environment", lambda: changed)

    return set_policy


# Reservations


def test_a_reserved_gpu_is_never_leased_to_another_user(
    client, admin, register, lease, submit, user_headers, other_user_headers
):
    register("gpu-1", gpu_count=4)
    held = reserve(client, user_headers, gpu_count=4).json()
    outsider_big = submit("outsider-big", headers=other_user_headers, gpu=4, priority=10)
    outsider_small = submit("outsider-small", headers=other_user_headers, gpu=1, priority=10)
    assert lease("gpu-1") is None
    mine = submit("mine", headers=user_headers, gpu=2, reservation_id=held["id"])
    work = lease("gpu-1")
    assert work["id"] == mine["id"] and work["reservation_id"] == held["id"]
    assert lease("gpu-1") is None  # 2 reserved GPUs are still idle: still only for the holder
    [listed] = client.get("/v1/scheduler/reservations", headers=user_headers).json()
    assert listed["status"] == "claimed"
    assert get_task(outsider_big["id"]).status == "queued" and get_task(outsider_small["id"]).status == "queued"


def test_reservation_admission_counts_running_work(client, admin, register, lease, submit):
    register("gpu-1", gpu_count=4)
    submit("busy", gpu=4)
    assert lease("gpu-1") is not None
    refused = reserve(client, admin, gpu_count=4)
    assert refused.status_code == 409 and refused.json()["code"] == "CONFLICT"
    assert reserve(client, admin, gpu_count=1).status_code == 409


def test_reservations_can_be_released_early_and_expire(
    client, admin, register, lease, submit, user_headers, other_user_headers
):
    register("gpu-1", gpu_count=4)
    first = reserve(client, user_headers, gpu_count=4).json()
    waiting = submit("waiting", headers=other_user_headers, gpu=4)
    assert lease("gpu-1") is None
    assert client.delete(f"/v1/scheduler/reservations/{first['id']}", headers=other_user_headers).status_code == 404
    assert client.delete(f"/v1/scheduler/reservations/{first['id']}", headers=user_headers).status_code == 204
    assert client.delete(f"/v1/scheduler/reservations/{first['id']}", headers=user_headers).status_code == 409
    assert client.get("/v1/scheduler/reservations", headers=user_headers).json() == []
    assert lease("gpu-1")["id"] == waiting["id"]
    report(client, admin, waiting["id"], "gpu-1", "completed")

    second = reserve(client, user_headers, gpu_count=4).json()
    later = submit("later", headers=other_user_headers, gpu=4)
    assert lease("gpu-1") is None
    ReservationRecord.get(f"RESERVATION#{second['id']}", "META").update(
        actions=[ReservationRecord.expires_at_epoch.set(int(time.time()) - 1)]
    )
    assert lease("gpu-1")["id"] == later["id"]


def test_a_task_names_only_its_owners_live_reservation_that_fits_it(client, register, user_headers, other_user_headers):
    register("gpu-1", gpu_count=4)
    held = reserve(client, user_headers, gpu_count=2).json()

    def submit_in(headers, **fields):
        return client.post("/v1/tasks", headers=headers, json={"job_name": "in-reservation", **fields})

    assert submit_in(other_user_headers, reservation_id=held["id"]).status_code == 403
    assert submit_in(user_headers, reservation_id="does-not-exist").status_code == 404
    too_big = submit_in(user_headers, reservation_id=held["id"], gpu=3)
    assert too_big.status_code == 400 and too_big.json()["code"] == "VALIDATION_ERROR"
    assert submit_in(user_headers, reservation_id=held["id"], gpu=2).status_code == 201
    assert client.get("/v1/tasks", headers=user_headers).json()["total"] == 1  # nothing written for the refusals


def test_list_filters_by_reservation_and_node_count_and_refuses_plugin_configs(
    client, admin, register, submit, user_headers
):
    register("gpu-1", gpu_count=4)
    register("gpu-2", gpu_count=4)
    held = reserve(client, user_headers, gpu_count=1).json()
    inside = submit("inside", headers=user_headers, gpu=1, reservation_id=held["id"])
    gang = submit("gang", headers=user_headers, gpu=1, node_count=2)
    submit("plain", headers=user_headers)
    listed = client.get("/v1/tasks", headers=admin, params={"reservation_id": held["id"]}).json()
    assert [t["id"] for t in listed["tasks"]] == [inside["id"]] and listed["total"] == 1
    unknown = client.get("/v1/tasks", headers=admin, params={"reservation_id": "does-not-exist"}).json()
    assert unknown["tasks"] == [] and unknown["total"] == 0
    assert [t["id"] for t in client.get("/v1/tasks", headers=admin, params={"node_count": 2}).json()["tasks"]] == [
        gang["id"]
    ]
    assert client.get("/v1/tasks", headers=admin).json()["total"] == 3
    refused = client.get("/v1/tasks", headers=admin, params={"plugin_configs": "{}"})
    assert refused.status_code == 400 and refused.json()["code"] == "VALIDATION_ERROR"


def test_scheduling_fields_are_validated(client, admin):
    for body in ({"node_count": 0}, {"walltime": 10}, {"preemptible": "maybe"}):
        response = client.post("/v1/tasks", headers=admin, json={"job_name": "bad", **body})
        assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"


# EASY backfill and walltime


def test_the_head_job_starts_by_its_reserved_time_while_backfill_fills_the_gaps(client, admin, register, lease, submit):
    register("gpu-1", gpu_count=4)
    running = submit("running", gpu=2, walltime=3600)
    assert lease("gpu-1")["id"] == running["id"]
    head = submit("head", gpu=4, priority=9)
    too_long = submit("too-long", gpu=1, walltime=7200)
    short = submit("short", gpu=1, walltime=1800)
    assert lease("gpu-1")["id"] == short["id"]  # ends before the head's start time: backfilled
    assert lease("gpu-1") is None  # too-long would delay the head
    # The head's reserved time (the running task's walltime) comes: both are over their walltime.
    backdate_lease(running["id"], 3601)
    backdate_lease(short["id"], 1801)
    assert sorted(cluster.enforce_walltime()) == sorted([running["id"], short["id"]])
    assert lease("gpu-1")["id"] == head["id"]
    assert get_task(too_long["id"]).status == "queued"


def test_greedy_policy_lets_small_tasks_overtake_the_head(client, register, lease, submit, policy):
    policy(mlworker_backfill="greedy")
    register("gpu-1", gpu_count=4)
    assert lease("gpu-1") is None
    submit("running", gpu=2)
    lease("gpu-1")
    submit("head", gpu=4, priority=9)
    too_long = submit("too-long", gpu=1, walltime=7200)
    assert lease("gpu-1")["id"] == too_long["id"]


def test_an_over_walltime_task_is_stopped(client, admin, register, lease, submit):
    register("gpu-1", gpu_count=4)
    task = submit("slow", gpu=4, walltime=60)
    assert lease("gpu-1")["walltime"] == 60
    backdate_lease(task["id"], 61)
    assert invoke("mlworker_leases", scheduled_tick()) == {"batchItemFailures": []}  # the lease sweep
    stopped = get_task(task["id"])
    assert stopped.status == "failed" and stopped.error == "walltime exceeded"
    assert get_worker("gpu-1").active_tasks == []
    assert beat(client, admin, "gpu-1")["stop_tasks"] == [task["id"]]
    assert beat(client, admin, "gpu-1")["stop_tasks"] == []  # told once


def test_the_default_walltime_comes_from_the_environment(submit):
    assert submit("default")["walltime"] == cluster.environment().mlworker_default_walltime_s


# Gangs


def test_a_gang_is_leased_on_all_its_nodes_with_ranks(client, admin, register, lease, submit):
    for worker_id in ("gpu-1", "gpu-2", "gpu-3"):
        register(worker_id, gpu_count=4)
    gang = submit("gang", gpu=4, node_count=2)
    leader = lease("gpu-1")
    assert leader["id"] == gang["id"] and leader["rank"] == 0
    assert [(n["node_id"], n["worker_id"]) for n in leader["node_assignments"]] == [(0, "gpu-1"), (1, "gpu-2")]
    assert [n["slot_assigned"] for n in leader["node_assignments"]] == [True, False]
    follower = lease("gpu-2")
    assert follower["id"] == gang["id"] and follower["rank"] == 1
    assert all(n["slot_assigned"] for n in follower["node_assignments"])
    assert lease("gpu-3") is None
    for worker_id in ("gpu-1", "gpu-2"):
        assert get_worker(worker_id).active_tasks == [gang["id"]]
        assert beat(client, admin, worker_id)["stop_tasks"] == []  # every rank renews the lease
    report(client, admin, gang["id"], "gpu-1", "completed")
    assert beat(client, admin, "gpu-2")["stop_tasks"] == [gang["id"]]


def test_a_gang_gets_all_its_nodes_or_none(client, register, lease, submit):
    register("gpu-1", gpu_count=4)
    register("gpu-2", gpu_count=4)
    gang = submit("gang", gpu=2, node_count=3)
    assert lease("gpu-1") is None and lease("gpu-2") is None
    assert get_task(gang["id"]).status == "queued"
    assert get_worker("gpu-1").active_tasks == [] and get_worker("gpu-2").active_tasks == []


def test_gangs_under_concurrent_leasers_never_overbook(client, register, lease, submit):
    worker_ids = [f"gpu-{index}" for index in range(5)]
    for worker_id in worker_ids:
        register(worker_id, gpu_count=4)
    gangs = [submit(f"gang-{index}", gpu=3, node_count=3) for index in range(3)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lease, worker_ids * 3))
    placed = [get_task(g["id"]) for g in gangs if get_task(g["id"]).status != "queued"]
    assert len(placed) == 1  # 5 workers of 4 GPUs hold one gang of 3 × 3
    holders = [n["worker_id"] for n in placed[0].node_assignments]
    assert len(set(holders)) == 3
    for worker_id in worker_ids:
        held = get_worker(worker_id).active_tasks
        assert held == ([placed[0].task_id] if worker_id in holders else [])


# Preemption and quotas


def test_preemption_requeues_the_victim_and_stops_its_process(client, admin, register, lease, submit):
    register("gpu-1", gpu_count=4)
    victim = submit("victim", gpu=4, priority=2, preemptible=True)
    assert lease("gpu-1")["id"] == victim["id"]
    urgent = submit("urgent", gpu=4, priority=9)
    assert lease("gpu-1")["id"] == urgent["id"]
    requeued = get_task(victim["id"])
    assert requeued.status == "queued" and requeued.retry_count == 0 and requeued.error == "preempted"
    assert requeued.history[-1]["status"] == "queued" and requeued.history[-1]["error"] == "preempted"
    assert get_worker("gpu-1").active_tasks == [urgent["id"]]
    assert beat(client, admin, "gpu-1")["stop_tasks"] == [victim["id"]]


def test_tasks_that_did_not_opt_in_are_not_preempted(client, register, lease, submit):
    register("gpu-1", gpu_count=4)
    kept = submit("kept", gpu=4, priority=1)
    lease("gpu-1")
    submit("urgent", gpu=4, priority=10)
    assert lease("gpu-1") is None and get_task(kept["id"]).status == "preparing"


def test_a_user_at_their_gpu_limit_waits_while_others_run(
    client, register, lease, submit, policy, user_headers, other_user_headers
):
    policy(mlworker_max_gpus_per_user=2)
    register("gpu-1", gpu_count=8)
    first = submit("first", headers=user_headers, gpu=2)
    assert lease("gpu-1")["id"] == first["id"]
    more = submit("more", headers=user_headers, gpu=1, priority=9)
    other = submit("other", headers=other_user_headers, gpu=2)
    assert lease("gpu-1")["id"] == other["id"]
    assert lease("gpu-1") is None
    assert get_task(more["id"]).status == "queued"


def test_fair_share_puts_the_lighter_user_first(
    client, admin, register, lease, submit, user_headers, other_user_headers
):
    register("gpu-1", gpu_count=1)
    used = submit("used", headers=user_headers, gpu=1)
    lease("gpu-1")
    backdate_lease(used["id"], 3600)
    report(client, admin, used["id"], "gpu-1", "completed")  # charges one GPU-hour
    heavy = submit("heavy", headers=user_headers, gpu=1)
    light = submit("light", headers=other_user_headers, gpu=1)
    queue = client.get("/v1/queue", headers=admin).json()["queue"]
    assert [entry["id"] for entry in queue] == [light["id"], heavy["id"]]
    assert lease("gpu-1")["id"] == light["id"]
    assert tasks.get_task(heavy["id"]).status == "queued"


def test_a_lease_decided_before_a_reservation_does_not_land_in_it(client, register, submit, user_headers):
    register("gpu-1", gpu_count=4)
    task = submit("racer", gpu=4)
    decision, state = cluster.decide("gpu-1")
    assert decision.task_id == task["id"]
    assert reserve(client, user_headers, gpu_count=4).status_code == 201  # lands between decision and write
    with pytest.raises(TransactWriteError):
        cluster.commit_lease(tasks.get_task(task["id"]), decision, state, 120)
    assert get_task(task["id"]).status == "queued" and get_worker("gpu-1").active_tasks == []


def test_plugin_status_is_what_the_worker_reported(client, admin, register, lease, submit):
    register("gpu-1", gpu_count=4)
    task = submit("tracked", gpu=1)
    assert task["plugin_status"] == {}  # nothing checked yet
    lease("gpu-1")
    unknown = report(client, admin, task["id"], "gpu-1", "running", plugin_status={"nope": {"status": "healthy"}})
    assert unknown.status_code == 400 and get_task(task["id"]).status == "preparing"
    reported = report(
        client,
        admin,
        task["id"],
        "gpu-1",
        "running",
        plugin_status={"tensorboard": {"status": "healthy", "url": "http://127.0.0.1:6006"}},
    )
    assert reported.status_code == 200
    status = client.get(f"/v1/tasks/{task['id']}", headers=admin).json()["plugin_status"]
    assert set(status) == {"tensorboard"} and status["tensorboard"]["status"] == "healthy"
    assert status["tensorboard"]["url"] == "http://127.0.0.1:6006" and status["tensorboard"]["last_check"]
