"""The GPU agent end to end: `python -m aiplane_agent` against the local HTTP server, and local mode,
where each instance moto runs gets its agent from the instance's user data."""

from __future__ import annotations

import signal

import boto3
import httpx
import pytest

from aiplane_local.gpu_agents import GpuInstanceSupervisor, start_agent_process
from aiplane_local.stack import free_port
from tests.e2e.conftest import REGION, wait_for
from tests.integration.gpufarm.conftest import ProvisioningQueue, let_admin_spend, new_user, running_contract


def loads(api_base: str, auth: dict) -> dict:
    return httpx.get(f"{api_base}/gpufarm/api/v1/loadbalancer/loads", headers=auth, timeout=30).json()["loads"]


@pytest.fixture
def auth(admin_api_key):
    return {"Authorization": f"Bearer {admin_api_key}"}


def test_agent_registers_heartbeats_serves_and_stops_cleanly(api_base, auth, tmp_path):
    owner_id, owner = new_user("e2e")
    port = free_port()
    contract = running_contract(owner_id, agent_port=port)
    instance_id = contract.instance_id
    credential = contract.auth["Authorization"].removeprefix("Bearer ")
    agent = start_agent_process(
        [
            "--api-url",
            f"{api_base}/gpufarm",
            "--credential",
            credential,
            "--instance-id",
            instance_id,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--advertise-host",
            "127.0.0.1",
            "--heartbeat-s",
            "0.2",
            "--state-dir",
            str(tmp_path),
        ],
        {},
    )
    try:
        wait_for(lambda: instance_id in loads(api_base, owner))
        response = httpx.post(
            f"{api_base}/gpufarm/api/v1/gpu/proxy", headers=owner, json={"method": "GET", "path": "/health"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["instance_id"] == instance_id and response.json()["runner"]["runner"] == "process"
        # Nothing on the agent serves an unknown path: the proxy answers the agent's 404, never an echo.
        unknown = httpx.post(
            f"{api_base}/gpufarm/api/v1/gpu/proxy",
            headers=owner,
            json={"method": "POST", "path": "/v1/inference", "payload": {"prompt": "Hello world"}},
        )
        assert unknown.status_code == 404 and "Hello world" not in unknown.text
        # The served request shows up in the next heartbeats as a response time.
        wait_for(lambda: loads(api_base, owner).get(instance_id, {}).get("response_time_ms", 0) > 0)
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=10) == 0
    assert instance_id not in loads(api_base, auth)


def test_local_mode_runs_an_agent_per_running_instance(api_base, auth, local_stack):
    let_admin_spend()
    queue = ProvisioningQueue(local_stack)
    queue.run_worker(10)
    supervisor = GpuInstanceSupervisor(REGION)
    ec2, events = boto3.client("ec2", region_name=REGION), boto3.client("events", region_name=REGION)
    supervisor.observe_once(ec2, events)  # instances from earlier tests: seen, agents started or not
    queue.run_worker(100)  # and their state-change events handled, so the queue is empty again
    try:
        created = httpx.post(f"{api_base}/gpufarm/api/v1/gpu/instances/aws/g5.xlarge", headers=auth, json={}).json()
        queue.run_worker()
        instance_id = ec2.describe_instances(
            Filters=[{"Name": "tag:aiplane:contract", "Values": [created["contract_id"]]}]
        )["Reservations"][0]["Instances"][0]["InstanceId"]

        supervisor.observe_once(ec2, events)  # EC2 says running: the event goes out, the agent starts
        queue.run_worker()
        from aiplane.gpufarm.contracts import get_contract

        assert get_contract(created["contract_id"]).status == "running"
        wait_for(lambda: instance_id in loads(api_base, auth))
        proxied = httpx.post(
            f"{api_base}/gpufarm/api/v1/gpu/proxy",
            headers=auth,
            json={"target": instance_id, "method": "GET", "path": "/health"},
        )
        assert proxied.status_code == 200 and proxied.json()["instance_id"] == instance_id

        deleted = httpx.delete(f"{api_base}/gpufarm/api/v1/gpu/instances/aws/{created['contract_id']}", headers=auth)
        assert deleted.status_code == 200
        supervisor.observe_once(ec2, events)
        queue.run_worker()
        assert get_contract(created["contract_id"]).status == "terminated"
        assert instance_id not in supervisor.agents
        wait_for(lambda: instance_id not in loads(api_base, auth))
    finally:
        supervisor.stop()
