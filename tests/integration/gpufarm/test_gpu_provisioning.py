"""Provisioning through the queue on moto EC2: failover, spot fallback, state changes, leases,
termination, the DLQ, and bad input that enqueues nothing."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import boto3

from aiplane import clock
from aiplane.gpufarm import agent_credentials, contracts
from aiplane.gpufarm.records import GpuContractRecord
from aiplane.identity.api_keys import GPU_AGENT_SCOPE, KEY_PREFIX, find_active_key, hash_key
from aiplane_local.provision import create_queue_with_dlq
from aiplane_shared import resources
from tests.integration.gpufarm.conftest import REGION, contract, ec2_refuses, publish_ec2_state

EC2 = boto3.client("ec2", region_name=REGION)
SSM = boto3.client("ssm", region_name=REGION)


def create(gpufarm, auth, provider: str, offer: str, **body) -> dict:
    response = gpufarm.post(f"/api/v1/gpu/instances/{provider}/{offer}", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def ec2_instance(instance_id: str) -> dict:
    return EC2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def test_create_enqueues_and_the_worker_launches_from_the_launch_template(gpufarm, auth, provisioning):
    body = create(gpufarm, auth, "aws", "g5.xlarge@us-east-1b", duration_hours=2)
    assert body["status"] == "provisioning" and body["provider"] == "aws"
    assert body["instance_id"] == "g5.xlarge@us-east-1b" and body["contract_id"].startswith("contract_")
    assert provisioning.depth() == 1

    provisioning.run_worker()
    record = contract(body["contract_id"])
    assert record.status == "provisioning" and record.provider_instance_id.startswith("i-")
    assert (record.instance_type, record.zone, record.market) == ("g5.xlarge", "us-east-1b", "on-demand")
    assert record.ends_at is not None
    instance = ec2_instance(record.provider_instance_id)
    assert instance["InstanceType"] == "g5.xlarge" and instance["Placement"]["AvailabilityZone"] == "us-east-1b"
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert tags["aiplane:contract"] == body["contract_id"]
    assert_user_data_carries_no_key_and_the_credential_is_the_instances_alone(record)

    # EC2 reports the instance running: EventBridge rule -> provisioning queue -> worker.
    publish_ec2_state(record.provider_instance_id, "running")
    provisioning.run_worker()
    assert contract(body["contract_id"]).status == "running"
    assert gpufarm.get("/stats").json()["gpu_instances_active"] >= 1


def assert_user_data_carries_no_key_and_the_credential_is_the_instances_alone(record) -> None:
    encoded = EC2.describe_instance_attribute(InstanceId=record.provider_instance_id, Attribute="userData")["UserData"][
        "Value"
    ]
    script = base64.b64decode(encoded).decode()
    assert KEY_PREFIX not in script  # no API key of any kind: the instance fetches its credential at boot
    parameter_name = agent_credentials.parameter_name(record.contract_id)
    assert parameter_name in script and "aws ssm get-parameter" in script
    parameter = SSM.get_parameter(Name=parameter_name, WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString" and hash_key(parameter["Value"]) == record.agent_key_hash
    key = find_active_key(parameter["Value"])
    assert (key.scope, key.contract_id, key.owner_id) == (GPU_AGENT_SCOPE, record.contract_id, record.user_id)
    assert key.gsi1pk is None  # not one of the user's keys
    tags = {
        tag["Key"]: tag["Value"]
        for tag in SSM.list_tags_for_resource(ResourceType="Parameter", ResourceId=parameter_name)["TagList"]
    }
    assert tags["aiplane:instance-arn"].endswith(f":instance/{record.provider_instance_id}")
    assert tags["aiplane:contract"] == record.contract_id


def test_capacity_error_fails_over_to_the_next_zone(gpufarm, auth, provisioning):
    body = create(gpufarm, auth, "aws", "g5.xlarge@us-east-1a")

    def refuse_1a(params):
        return "InsufficientInstanceCapacity" if params.get("Placement.AvailabilityZone") == "us-east-1a" else None

    with ec2_refuses(refuse_1a):
        provisioning.run_worker()
    record = contract(body["contract_id"])
    assert (record.instance_type, record.zone) == ("g5.xlarge", "us-east-1b")
    assert [attempt.get("error") or attempt["result"] for attempt in record.attempts] == [
        "InsufficientInstanceCapacity",
        "launched",
    ]


def test_capacity_error_everywhere_fails_over_to_the_next_instance_type(gpufarm, auth, provisioning):
    body = create(gpufarm, auth, "aws", "g5.xlarge@us-east-1a", max_price=1.3)
    with ec2_refuses(
        lambda params: "InsufficientInstanceCapacity" if params.get("InstanceType") == "g5.xlarge" else None
    ) as calls:
        provisioning.run_worker()
    record = contract(body["contract_id"])
    assert record.instance_type == "g5.2xlarge"  # the next acceptable type: one A10G, next price, within max_price
    assert ec2_instance(record.provider_instance_id)["InstanceType"] == "g5.2xlarge"
    tried = [(attempt["instance_type"], attempt["zone"]) for attempt in record.attempts]
    g5_zones = [zone for instance_type, zone in tried if instance_type == "g5.xlarge"]
    assert g5_zones[0] == "us-east-1a" and len(g5_zones) == len(set(g5_zones)) > 1
    assert tried[-1][0] == "g5.2xlarge" and len(calls) == len(tried)


def test_quota_error_skips_the_remaining_zones_of_the_type(gpufarm, auth, provisioning):
    body = create(gpufarm, auth, "aws", "g5.xlarge", max_price=1.3)
    with ec2_refuses(lambda params: "VcpuLimitExceeded" if params.get("InstanceType") == "g5.xlarge" else None):
        provisioning.run_worker()
    record = contract(body["contract_id"])
    assert [attempt["instance_type"] for attempt in record.attempts] == ["g5.xlarge", "g5.2xlarge"]


def test_every_attempt_failing_marks_the_contract_failed_with_reasons(gpufarm, auth, provisioning):
    body = create(gpufarm, auth, "aws", "p5.48xlarge")
    with ec2_refuses(lambda params: "InsufficientInstanceCapacity"):
        provisioning.run_worker()
    record = contract(body["contract_id"])
    assert record.status == "failed" and record.provider_instance_id is None
    assert record.failure_reasons and all("InsufficientInstanceCapacity" in reason for reason in record.failure_reasons)
    assert not SSM.get_parameters(Names=[agent_credentials.parameter_name(record.contract_id)])["Parameters"]
    assert len(record.attempts) >= 2


def test_spot_falls_back_to_on_demand(gpufarm, auth, provisioning):
    body = create(gpufarm, auth, "aws", "g4dn.xlarge@us-east-1a", market="spot", on_demand_fallback=True)
    with ec2_refuses(
        lambda params: (
            "InsufficientInstanceCapacity" if params.get("InstanceMarketOptions.MarketType") == "spot" else None
        )
    ):
        provisioning.run_worker()
    record = contract(body["contract_id"])
    assert record.market == "on-demand" and record.instance_type == "g4dn.xlarge"
    assert {attempt["market"] for attempt in record.attempts} == {"spot", "on-demand"}


def test_spot_without_fallback_launches_spot(gpufarm, auth, provisioning):
    body = create(gpufarm, auth, "aws", "g4dn.xlarge", market="spot", on_demand_fallback=False)
    provisioning.run_worker()
    record = contract(body["contract_id"])
    assert record.market == "spot"
    assert ec2_instance(record.provider_instance_id).get("InstanceLifecycle") == "spot"


def test_delete_terminates_and_the_state_change_finishes_the_contract(gpufarm, auth, provisioning):
    body = create(gpufarm, auth, "aws", "g6.xlarge")
    provisioning.run_worker()
    record = contract(body["contract_id"])
    credential = SSM.get_parameter(Name=agent_credentials.parameter_name(record.contract_id), WithDecryption=True)
    credential = credential["Parameter"]["Value"]
    assert hash_key(credential) == record.agent_key_hash

    response = gpufarm.delete(f"/api/v1/gpu/instances/aws/{record.provider_instance_id}", headers=auth)
    assert response.status_code == 200
    assert response.json()["message"] == "Instance destroyed successfully"
    assert response.json()["instance_id"] == record.provider_instance_id
    assert contract(body["contract_id"]).status == "terminating"
    assert ec2_instance(record.provider_instance_id)["State"]["Name"] in ("shutting-down", "terminated")

    publish_ec2_state(record.provider_instance_id, "terminated")
    provisioning.run_worker()
    assert contract(body["contract_id"]).status == "terminated"
    # The agent credential ended with it.
    assert find_active_key(credential) is None
    assert not SSM.get_parameters(Names=[agent_credentials.parameter_name(record.contract_id)])["Parameters"]
    # An out-of-order "running" never moves it back.
    publish_ec2_state(record.provider_instance_id, "running")
    provisioning.run_worker()
    assert contract(body["contract_id"]).status == "terminated"
    assert gpufarm.delete(f"/api/v1/gpu/instances/aws/{record.provider_instance_id}", headers=auth).status_code == 404


def test_delete_before_launch_cancels(gpufarm, auth, provisioning):
    body = create(gpufarm, auth, "aws", "g5.xlarge@us-east-1c")
    response = gpufarm.delete(f"/api/v1/gpu/instances/aws/{body['contract_id']}", headers=auth)
    assert response.status_code == 200
    provisioning.run_worker()
    record = contract(body["contract_id"])
    assert record.status == "terminated" and record.provider_instance_id is None


def test_lease_sweep_terminates_expired_contracts_and_renews_auto_renew(gpufarm, auth, provisioning):
    ending = create(gpufarm, auth, "aws", "g4dn.xlarge", duration_hours=1)
    renewing = create(gpufarm, auth, "aws", "g4dn.xlarge", duration_hours=1, auto_renew=True)
    provisioning.run_worker()
    past = clock.now() - timedelta(minutes=1)
    for body in (ending, renewing):
        record = contract(body["contract_id"])
        contracts.set_status(record, "running", GpuContractRecord.ends_at.set(past))

    contracts.enqueue([{"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}])
    provisioning.run_worker()
    assert contract(ending["contract_id"]).status == "terminating"
    renewed = contract(renewing["contract_id"])
    assert renewed.status == "running" and renewed.ends_at > clock.now() + timedelta(minutes=55)


def test_poison_message_ends_in_the_dlq(local_stack):
    sqs = boto3.client("sqs", region_name=REGION)
    queue = resources.Queue(
        f"provisioning-poison-{uuid.uuid4().hex[:6]}",
        "test",
        explicit_visibility_s=0,
        max_receive_count=2,
        consumer=resources.PROVISIONING_QUEUE.consumer,
    )
    urls = create_queue_with_dlq(sqs, "aiplane-local", queue)
    arn = sqs.get_queue_attributes(QueueUrl=urls[queue.name], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=urls[queue.name], MessageBody=json.dumps({"kind": "bogus"}))
    sqs.send_message(QueueUrl=urls[queue.name], MessageBody="not json at all")
    sqs.send_message(
        QueueUrl=urls[queue.name], MessageBody=json.dumps({"kind": "provision", "contract_id": "contract_gone"})
    )
    for _ in range(5):
        local_stack.dispatchers.deliver_once(sqs, queue, urls[queue.name], arn)
    dead = sqs.receive_message(QueueUrl=urls[queue.dlq_name], MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    )
    assert sorted(message["Body"] for message in dead) == sorted([json.dumps({"kind": "bogus"}), "not json at all"])
    assert sqs.receive_message(QueueUrl=urls[queue.name], WaitTimeSeconds=0).get("Messages", []) == []


def test_bad_input_is_4xx_and_enqueues_nothing(gpufarm, auth, provisioning):
    before = provisioning.depth()
    cases = [
        gpufarm.post("/api/v1/gpu/instances/lambdalabs/x", json={}, headers=auth),
        gpufarm.post("/api/v1/gpu/instances/aws/g5.xlarge", json={"duration_hours": -1}, headers=auth),
        gpufarm.post("/api/v1/gpu/instances/aws/g5.xlarge", json={"market": "reserved"}, headers=auth),
        gpufarm.post("/api/v1/gpu/instances/aws/x9.huge", json={}, headers=auth),
        gpufarm.post("/api/v1/gpu/instances/aws/g5.xlarge@mars-1a", json={}, headers=auth),
        gpufarm.post("/api/v1/gpu/instances/aws/g5.xlarge", headers=auth),
        gpufarm.post("/api/v1/gpu/instances/reserve", json={"count": 0}, headers=auth),
        gpufarm.post("/api/v1/gpu/instances/reserve", json={"count": 2, "filters": {"max_price": -1}}, headers=auth),
        gpufarm.post("/api/v1/gpu/instances/reserve", json={"count": 2, "filters": {"provider": "nope"}}, headers=auth),
        gpufarm.post("/api/v1/gpu/instances/batch", json={"vastai_count": 0}, headers=auth),
        gpufarm.post("/api/v1/gpu/instances/batch", json={"ionet_count": -2}, headers=auth),
        gpufarm.delete("/api/v1/gpu/instances/nope/x", headers=auth),
        gpufarm.delete("/api/v1/gpu/instances/aws/i-0000000000000000", headers=auth),
    ]
    assert [response.status_code for response in cases] == [
        400,
        400,
        400,
        404,
        404,
        400,
        400,
        400,
        400,
        400,
        400,
        400,
        404,
    ]
    assert all("error" in response.json() and "code" in response.json() for response in cases)
    assert provisioning.depth() == before


def test_reserve_spreads_over_the_cheapest_matching_offers(gpufarm, auth, provisioning):
    response = gpufarm.post(
        "/api/v1/gpu/instances/reserve",
        headers=auth,
        json={
            "count": 3,
            "filters": {"provider": "aws", "gpu_model": "A10G", "location": "us-east-1"},
            "config": {"duration_hours": 8, "auto_renew": True},
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["count"] == body["requested"] == 3 and body["errors"] == []
    assert len({item["instance_id"] for item in body["reserved"]}) == 3  # three zones of the cheapest A10G type
    assert all(item["instance_id"].startswith("g5.xlarge@") for item in body["reserved"])
    provisioning.run_worker()
    assert all(contract(item["contract_id"]).provider_instance_id for item in body["reserved"])


def test_batch_across_marketplaces(gpufarm, auth, provisioning, marketplaces):
    vast, ionet = marketplaces
    response = gpufarm.post(
        "/api/v1/gpu/instances/batch",
        headers=auth,
        json={"vastai_count": 2, "ionet_count": 2, "config": {"duration_hours": 4, "auto_renew": False}},
    )
    assert response.status_code == 201
    body = response.json()
    assert len(body["vastai_instances"]) == 2 and len(body["ionet_instances"]) == 1
    assert body["total_created"] == 3
    assert body["errors"] == [{"provider": "ionet", "error": "only 1 of 2 requested instances are available"}]

    provisioning.run_worker()
    rented = contract(body["vastai_instances"][0])
    assert rented.status == "running" and rented.provider_instance_id == str(7000 + int(rented.offer_id))
    assert any(method == "PUT" and path.startswith("/api/v0/asks/") for method, path, _ in vast.requests)
    io_contract = contract(body["ionet_instances"][0])
    assert io_contract.provider_instance_id == "dep-io-h100-1"

    response = gpufarm.delete(f"/api/v1/gpu/instances/vastai/{rented.offer_id}", headers=auth)
    assert response.status_code == 200
    assert contract(rented.contract_id).status == "terminated"
    assert ("DELETE", f"/api/v0/instances/{rented.provider_instance_id}/", None) in vast.requests
