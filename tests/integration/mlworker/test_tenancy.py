"""Tenancy of GPU hosts, replayed as the attack went: a renter's GPU contract agent registers as an
mlworker worker, and a freshly signed-up mlworker user submits work. Before, the scheduler leased
any user's task to it (running on the renter's host, on the renter's bill, beside the agent's
credential). Now a worker takes its owner's work only, unless an admin shared it; every path
that hands out work (lease, backfill, gangs, reservations, preemption, Jupyter) obeys that."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from aiplane.identity.api_keys import issue_api_key
from aiplane.identity.principal import agent_worker_id
from aiplane.identity.users import create_user
from aiplane.mlworker.tasks import get_task
from aiplane.mlworker.workers import find_worker, get_worker
from tests.integration.gpufarm.conftest import running_contract
from tests.integration.mlworker.conftest import new_user_headers


@dataclass(frozen=True)
class Renter:
    user_id: str
    headers: dict[str, str]  # their own API key (mlworker and gpufarm)
    agent: dict[str, str]  # their GPU contract's agent credential
    worker_id: str  # the mlworker worker their agent speaks for


def new_renter() -> Renter:
    """A user renting a GPU contract, as the provisioner sets it up (credential per contract)."""
    user = create_user(
        f"renter-{uuid.uuid4().hex[:8]}@example.com", "Correct-Horse-Battery-9", families=["mlworker", "gpufarm"]
    )
    contract = running_contract(user.user_id)
    agent = {"X-API-Key": contract.auth["Authorization"].removeprefix("Bearer ")}  # mlworker's header
    return Renter(
        user.user_id,
        {"X-API-Key": issue_api_key(user.user_id, "renter").api_key},
        agent,
        agent_worker_id(contract.contract_id),
    )


@pytest.fixture
def renter(client) -> Renter:
    renter = new_renter()
    assert register_as(client, renter.agent, renter.worker_id).status_code == 201
    return renter


def register_as(client, headers, worker_id: str, gpu_count: int = 4, **body):
    return client.post(
        "/v1/scheduler/workers",
        headers=headers,
        json={"id": worker_id, "capabilities": {"gpu_count": gpu_count, "cpu_cores": 32, "memory_gb": 256}, **body},
    )


def lease_as(client, headers, worker_id: str) -> dict | None:
    response = client.post(f"/v1/scheduler/workers/{worker_id}/lease", headers=headers)
    assert response.status_code in (200, 204), response.text
    return response.json() if response.status_code == 200 else None


def test_a_strangers_task_is_not_leased_to_a_renters_contract_worker(client, renter, submit, register, lease):
    stranger = new_user_headers()  # freshly signed up, mlworker only
    theirs = submit("theirs", headers=stranger, gpu=1, priority=10)
    assert lease_as(client, renter.agent, renter.worker_id) is None
    assert get_task(theirs["id"]).status == "queued"  # it waits for a worker it may use
    mine = submit("mine", headers=renter.headers, gpu=1, priority=1)
    assert lease_as(client, renter.agent, renter.worker_id)["id"] == mine["id"]  # the renter's own still runs
    worker = get_worker(renter.worker_id)
    assert (worker.owner_id, worker.shared) == (renter.user_id, False)

    register("pool", gpu_count=4)  # an admin's shared worker: the stranger's task runs there
    assert lease("pool")["id"] == theirs["id"]


def test_a_shared_admin_worker_runs_every_users_task_and_an_unshared_one_only_the_admins(
    client, admin, register, lease, submit
):
    stranger = new_user_headers()
    register("private", gpu_count=1, shared=False)
    theirs = submit("theirs", headers=stranger, gpu=1, priority=10)
    admins = submit("admins", gpu=1, priority=1)
    assert lease("private")["id"] == admins["id"]
    assert lease("private") is None and get_task(theirs["id"]).status == "queued"
    shared = register("pool", gpu_count=2)
    assert shared["shared"] is True
    assert lease("pool")["id"] == theirs["id"]
    more = submit("more-admin", gpu=1)
    assert lease("pool")["id"] == more["id"]  # admin-owned tasks run on shared workers too


def test_only_an_admin_shares_a_worker(client, admin, renter):
    refused = register_as(client, renter.agent, renter.worker_id, shared=True)
    assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
    assert get_worker(renter.worker_id).shared is False
    fresh = new_renter()
    refused = register_as(client, fresh.agent, fresh.worker_id, shared=True)
    assert refused.status_code == 403 and find_worker(fresh.worker_id) is None  # nothing written
    # An admin may share the renter's worker; the renter's agent re-registering keeps it (and its owner).
    assert register_as(client, admin, renter.worker_id, shared=True).json()["shared"] is True
    assert register_as(client, renter.agent, renter.worker_id).status_code == 200
    assert (get_worker(renter.worker_id).owner_id, get_worker(renter.worker_id).shared) == (renter.user_id, True)
    assert register_as(client, renter.agent, renter.worker_id, shared=False).status_code == 403


def test_nobody_takes_over_another_owners_worker_id(client, admin, renter):
    other = new_renter()
    # Another contract's credential never speaks for this worker id.
    assert register_as(client, other.agent, renter.worker_id).status_code == 403
    # An id someone else registered first stays theirs: the contract's own agent cannot claim it.
    assert register_as(client, admin, other.worker_id).status_code == 201
    claimed = register_as(client, other.agent, other.worker_id)
    assert claimed.status_code == 409 and claimed.json()["code"] == "CONFLICT"
    assert get_worker(other.worker_id).owner_id != other.user_id
    assert get_worker(renter.worker_id).owner_id == renter.user_id


def test_a_gang_runs_only_on_workers_that_admit_its_owner(client, renter, submit, register):
    other = new_renter()
    assert register_as(client, other.agent, other.worker_id).status_code == 201
    gang = submit("gang", headers=other.headers, gpu=2, node_count=2)
    # The renter's free host never becomes the stranger's second node.
    assert lease_as(client, other.agent, other.worker_id) is None
    assert lease_as(client, renter.agent, renter.worker_id) is None
    register("pool", gpu_count=4)
    leased = lease_as(client, other.agent, other.worker_id)
    assert leased["id"] == gang["id"]
    assert {n["worker_id"] for n in get_task(gang["id"]).node_assignments} == {other.worker_id, "pool"}
    assert get_worker(renter.worker_id).active_tasks == []


def test_preemption_and_backfill_never_cross_to_another_renters_host(client, renter, submit, register, lease):
    stranger = new_user_headers()
    low = submit("low", headers=renter.headers, gpu=4, priority=1, preemptible=True)
    assert lease_as(client, renter.agent, renter.worker_id)["id"] == low["id"]
    # The stranger's urgent task would preempt the renter's task, were the renter's host its to use.
    urgent = submit("urgent", headers=stranger, gpu=4, priority=10)
    assert lease_as(client, renter.agent, renter.worker_id) is None
    assert get_task(low["id"]).status == "preparing" and get_task(urgent["id"]).status == "queued"
    # Behind the stranger's waiting task, the renter's own next task still backfills the renter's host.
    report = client.post(
        f"/v1/scheduler/jobs/{low['id']}/state",
        headers=renter.agent,
        json={"worker_id": renter.worker_id, "status": "completed", "fencing_token": 1},
    )
    assert report.status_code == 200, report.text
    later = submit("later", headers=renter.headers, gpu=4, priority=1)
    assert lease_as(client, renter.agent, renter.worker_id)["id"] == later["id"]
    register("pool", gpu_count=4)
    assert lease("pool")["id"] == urgent["id"]


def test_a_reservation_holds_gpus_only_on_workers_that_admit_its_owner(client, renter, register):
    stranger = new_user_headers()
    refused = client.post("/v1/scheduler/reservations", headers=stranger, json={"gpu_count": 2})
    assert refused.status_code == 409  # the renter's idle host is not the stranger's capacity
    assert client.post("/v1/scheduler/reservations", headers=renter.headers, json={"gpu_count": 2}).status_code == 201
    register("pool", gpu_count=2)
    placed = client.post("/v1/scheduler/reservations", headers=stranger, json={"gpu_count": 2})
    assert placed.status_code == 201


def test_a_strangers_jupyter_service_starts_only_on_a_worker_it_may_use(client, admin):
    renter = new_renter()
    assert register_as(client, renter.agent, renter.worker_id, service_slots=2).status_code == 201
    stranger = new_user_headers()
    theirs = client.post("/v1/jupyter/services", headers=stranger, json={"name": "theirs"}).json()
    mine = client.post("/v1/jupyter/services", headers=renter.headers, json={"name": "mine"}).json()
    taken = client.post(f"/v1/jupyter/workers/{renter.worker_id}/services", headers=renter.agent).json()["services"]
    assert [service["id"] for service in taken] == [mine["id"]]
    assert (
        client.post(
            "/v1/scheduler/workers", headers=admin, json={"id": "pool", "service_slots": 1, "shared": True}
        ).status_code
        == 201
    )
    pooled = client.post("/v1/jupyter/workers/pool/services", headers=admin).json()["services"]
    assert [service["id"] for service in pooled] == [theirs["id"]]
