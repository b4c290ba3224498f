"""/mlworker/ws and /gpufarm/ws over real WebSockets: the handshake authenticates as HTTP does,
each family's protocol answers, and status changes reach their owner's connections through the
domain bus, the live-updates queue and PostToConnection (a stale connection is forgotten)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from aiplane.gpufarm import contracts
from aiplane.identity.principal import USER, Principal
from aiplane.live import connections, sender
from aiplane.live.connections import ConnectionRecord
from aiplane.mlworker import cluster, workers
from aiplane.mlworker.schemas import JobStateReport
from tests.integration.gpufarm.conftest import running_contract
from tests.integration.live.conftest import new_user
from tests.integration.mlworker.conftest import clear_table as clear_mlworker_table

TASK = {"job_name": "ws-job", "priority": 5}


def receive(ws, timeout: float = 5.0) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def test_mlworker_handshake_needs_the_api_key(live_server):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{live_server}/mlworker/ws")
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["code"] == "UNAUTHORIZED"
    with pytest.raises(InvalidStatus) as wrong:
        connect(f"{live_server}/mlworker/ws", additional_headers={"X-API-Key": "ak_not-a-key"})
    assert wrong.value.response.status_code == 401


def test_mlworker_ping_answers_pong(live_server):
    user = new_user("mlworker")
    with connect(f"{live_server}/mlworker/ws", additional_headers={"X-API-Key": user.api_key}) as ws:
        ws.send("ping")
        assert receive(ws) == {"type": "pong"}
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws) == {"type": "pong"}
        ws.send(json.dumps({"type": "dance"}))
        assert receive(ws) == {"type": "error", "error": "Unknown message type"}


def test_mlworker_task_updates_reach_the_owner_only(live_server, live_updates, family_clients):
    mlworker = family_clients["mlworker"]
    owner, other = new_user("mlworker"), new_user("mlworker")
    with (
        connect(f"{live_server}/mlworker/ws", additional_headers={"X-API-Key": owner.api_key}) as ws,
        connect(f"{live_server}/mlworker/ws", additional_headers={"X-API-Key": other.api_key}) as bystander,
    ):
        created = mlworker.post("/v1/tasks", headers={"X-API-Key": owner.api_key}, json=TASK)
        assert created.status_code == 201
        task_id = created.json()["id"]
        live_updates.run_sender()
        update = receive(ws)
        assert update["type"] == "task_update" and update["task_id"] == task_id and update["status"] == "queued"
        assert update["task"]["id"] == task_id and update["task"]["user_id"] == owner.user_id

        assert mlworker.delete(f"/v1/tasks/{task_id}", headers={"X-API-Key": owner.api_key}).status_code == 204
        live_updates.run_sender()
        ended, complete = receive(ws), receive(ws)
        assert (ended["type"], ended["status"], ended["task"]["error"]) == ("task_update", "failed", "cancelled")
        assert (complete["type"], complete["task_id"], complete["status"]) == ("task_complete", task_id, "failed")

        bystander.send("ping")  # the next thing the bystander gets is its own pong: no one else's task
        assert receive(bystander) == {"type": "pong"}


def test_mlworker_worker_progress_is_pushed_through_to_completion(
    live_server, live_updates, family_clients, admin_api_key
):
    mlworker = family_clients["mlworker"]
    clear_mlworker_table()  # the worker must lease this test's task, not one another test left queued
    owner = new_user("mlworker")
    worker = mlworker.post(
        "/v1/scheduler/workers",
        headers={"X-API-Key": admin_api_key},
        json={
            "capabilities": {"gpu_count": 0, "gpu_type": "none", "cpu_cores": 4, "memory_gb": 8},
            "service_slots": 1,
            "shared": True,
        },
    )  # the owner's task runs on the admin's worker
    assert worker.status_code in (200, 201), worker.text
    worker_id = worker.json()["id"]
    with connect(f"{live_server}/mlworker/ws", additional_headers={"X-API-Key": owner.api_key}) as ws:
        task_id = mlworker.post("/v1/tasks", headers={"X-API-Key": owner.api_key}, json=TASK).json()["id"]
        leased = cluster.lease_task(worker_id)
        assert leased is not None and leased.task_id == task_id
        for status in ("running", "completed"):
            workers.report_state(
                task_id, JobStateReport(worker_id=worker_id, status=status, fencing_token=int(leased.fencing_token))
            )
        live_updates.run_sender()
        seen = [receive(ws) for _ in range(5)]
    assert [(m["type"], m["status"]) for m in seen] == [
        ("task_update", "queued"),
        ("task_update", "preparing"),
        ("task_update", "running"),
        ("task_update", "completed"),
        ("task_complete", "completed"),
    ]


def test_gpufarm_protocol_as_the_original_server_speaks_it(live_server):
    user = new_user("gpufarm")
    with connect(f"{live_server}/gpufarm/ws", additional_headers={"Authorization": f"Bearer {user.api_key}"}) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws) == {"type": "pong"}
        ws.send(json.dumps({"type": "subscribe"}))
        subscribed = receive(ws)
        assert subscribed["type"] == "subscribed" and subscribed["message"] == "Successfully subscribed to GPU stream"
        for sent, error in (
            ("not json", "Invalid JSON"),
            ('{"stream": "gpu"}', "Missing message type"),
            ('{"type": "launch"}', "Unknown message type"),
        ):
            ws.send(sent)
            assert receive(ws) == {"type": "error", "error": error}


def test_gpufarm_handshake_takes_x_api_key_too_and_refuses_other_families(live_server):
    user = new_user("gpufarm")
    with connect(f"{live_server}/gpufarm/ws", additional_headers={"X-API-Key": user.api_key}) as ws:
        ws.send('{"type":"ping"}')
        assert receive(ws) == {"type": "pong"}
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{live_server}/mlworker/ws", additional_headers={"X-API-Key": user.api_key})
    assert refused.value.response.status_code == 403


def test_gpufarm_status_changes_reach_subscribed_connections(live_server, live_updates, family_clients):
    gpufarm = family_clients["gpufarm"]
    user = new_user("gpufarm")
    headers = {"Authorization": f"Bearer {user.api_key}"}
    with (
        connect(f"{live_server}/gpufarm/ws", additional_headers=headers) as ws,
        connect(f"{live_server}/gpufarm/ws", additional_headers=headers) as unsubscribed,
    ):
        ws.send('{"type":"subscribe"}')
        assert receive(ws)["type"] == "subscribed"
        agent = running_contract(user.user_id)
        registered = gpufarm.post(
            "/api/v1/gpu/agents/register",
            headers=agent.auth,
            json={"instance_id": agent.instance_id, "url": agent.url, "gpus": []},
        )
        assert registered.status_code == 201, registered.text
        contracts.set_status(contracts.get_contract(agent.contract_id), contracts.TERMINATING)
        live_updates.run_sender()
        online, terminating = receive(ws), receive(ws)
        assert (online["type"], online["instance_id"], online["status"]) == (
            "instance_status",
            agent.instance_id,
            "online",
        )
        assert (terminating["type"], terminating["contract_id"], terminating["status"]) == (
            "contract_status",
            agent.contract_id,
            "terminating",
        )
        unsubscribed.send('{"type":"ping"}')
        assert receive(unsubscribed) == {"type": "pong"}  # nothing was pushed before it


def test_a_connection_api_gateway_no_longer_holds_is_forgotten(live_server):
    user = new_user("mlworker")
    gone = f"gone-{uuid.uuid4().hex}"
    connections.connect("mlworker", Principal(id=user.user_id, kind=USER, credential="api_key"), gone)
    sent = sender.deliver({"family": "mlworker", "user_id": user.user_id, "messages": [{"type": "task_update"}]})
    assert sent == 0
    assert connections.find(gone) is None
    assert not list(ConnectionRecord.by_listener.query(ConnectionRecord.listener_key("mlworker", user.user_id)))


def test_a_closed_socket_is_deleted_on_disconnect(live_server):
    user = new_user("mlworker")
    with connect(f"{live_server}/mlworker/ws", additional_headers={"X-API-Key": user.api_key}) as ws:
        ws.send("ping")
        receive(ws)
        assert len(connections.listeners("mlworker", user.user_id, subscribers_only=False)) == 1
    for _ in range(50):
        if not connections.listeners("mlworker", user.user_id, subscribers_only=False):
            break
        time.sleep(0.05)
    assert connections.listeners("mlworker", user.user_id, subscribers_only=False) == []
