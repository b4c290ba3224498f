"""The scheduled housekeeping: lost-worker marking and idle-circuit collection, run by invoking
the consumers of the scheduled rules' queues."""

from __future__ import annotations

import time

import boto3

from aiplane.appproxy.circuits import get_circuit
from aiplane.appproxy.models import CircuitRecord, WorkerRecord
from aiplane.appproxy.workers import get_worker
from aiplane_local.lambda_runtime import invoke
from aiplane_shared import resources
from events.generate import scheduled_tick
from tests.integration.appproxy.conftest import port_worker


def go_silent(worker_id: str, seconds: int) -> None:
    get_worker(worker_id).update(actions=[WorkerRecord.last_heartbeat_epoch.set(int(time.time()) - seconds)])


def test_worker_silent_past_the_timeout_is_marked_lost(client, as_worker, register, create_endpoint):
    silent = register(port_worker("silent.example"))
    talking = register(port_worker("talking.example", first=21100, last=21101))
    go_silent(silent["id"], 31)
    go_silent(talking["id"], 5)

    assert invoke("appproxy_worker_liveness", scheduled_tick()) == {"batchItemFailures": []}
    assert get_worker(silent["id"]).lost is True and get_worker(talking["id"]).lost is False
    # No new circuit goes to the lost worker even though it has more free slots.
    assert create_endpoint()[1].json()["endpoint"].startswith("http://talking.example:")

    client.patch(f"/api/worker/{silent['id']}", headers=as_worker)
    assert get_worker(silent["id"]).lost is False


def test_lost_after_is_configurable(set_setting, register):
    worker = register(port_worker())
    go_silent(worker["id"], 31)
    set_setting("AIPLANE_APPPROXY_WORKER_LOST_AFTER_S", "120")
    invoke("appproxy_worker_liveness", scheduled_tick())
    assert get_worker(worker["id"]).lost is False


def test_idle_interactive_circuits_are_collected_and_free_their_slots(
    client, as_worker, register, open_app, create_endpoint
):
    worker = register(port_worker(first=21200, last=21202))
    open_app()
    open_app()
    create_endpoint()
    circuits = client.get(f"/api/worker/{worker['id']}/circuits", headers=as_worker).json()["circuits"]
    idle, active = [circuit["id"] for circuit in circuits if circuit["app_mode"] == "interactive"]
    inference = next(circuit["id"] for circuit in circuits if circuit["app_mode"] == "inference")
    long_ago = int(time.time()) - 3601
    get_circuit(idle).update(actions=[CircuitRecord.last_access.set(long_ago)])
    get_circuit(inference).update(actions=[CircuitRecord.last_access.set(long_ago)])

    assert invoke("appproxy_idle_circuits", scheduled_tick()) == {"batchItemFailures": []}
    assert client.get(f"/api/circuit/{idle}", headers=as_worker).status_code == 404
    assert client.get(f"/api/circuit/{active}", headers=as_worker).status_code == 200
    assert (
        client.get(f"/api/circuit/{inference}", headers=as_worker).status_code == 200
    )  # inference is never idle-collected
    state = client.get(f"/api/worker/{worker['id']}", headers=as_worker).json()
    assert state["occupied_slots"] == 2 and sum(slot["in_use"] for slot in state["slots"]) == 2


def test_the_rules_reach_their_consumers_through_the_queues(local_stack, register):
    """The local schedule → SQS → consumer path, as the dispatchers run it."""
    worker = register(port_worker())
    go_silent(worker["id"], 60)
    sqs = boto3.client("sqs", region_name=local_stack.dispatchers.region)
    queue = resources.APPPROXY_WORKER_LIVENESS_QUEUE
    url = local_stack.provisioned.queue_urls[queue.name]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    local_stack.dispatchers.fire_schedule_once(resources.APPPROXY_WORKER_LIVENESS_SCHEDULE)
    assert local_stack.dispatchers.deliver_once(sqs, queue, url, arn) == 1
    assert get_worker(worker["id"]).lost is True


def test_a_lost_workers_circuits_move_to_a_live_worker(client, as_worker, register, create_endpoint):
    lost = register(port_worker("lost.example", first=21300, last=21301))
    endpoint_id, created = create_endpoint()
    assert created.json()["endpoint"].startswith("http://lost.example:")
    live = register(port_worker("live.example", first=21400, last=21401))
    go_silent(lost["id"], 60)

    assert invoke("appproxy_worker_liveness", scheduled_tick()) == {"batchItemFailures": []}
    (moved,) = client.get(f"/api/worker/{live['id']}/circuits", headers=as_worker).json()["circuits"]
    assert moved["endpoint_id"] == endpoint_id
    assert client.get(f"/api/worker/{lost['id']}/circuits", headers=as_worker).json()["circuits"] == []
    # The endpoint answers its new URL.
    _, again = create_endpoint(endpoint_id)
    assert again.json()["endpoint"] == f"http://live.example:{moved['port']}"
