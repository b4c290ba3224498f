"""GPU spend is authorised before anything launches: holds against credits, spending windows and
caps, settlement, failover that never raises price or size, idempotent launches, reconciliation,
and failures that end visibly (each attack of issue 10 §1 replayed)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import boto3
import pytest

from aiplane import clock
from aiplane.commerce import billing, holds
from aiplane.commerce.windows import cost_cents
from aiplane.gpufarm import contracts, provisioner
from aiplane.gpufarm.records import GpuContractRecord
from aiplane.settings import current_environment, get_settings
from aiplane_local.provision import create_queue_with_dlq
from aiplane_shared import resources
from tests.integration.gpufarm.conftest import REGION, contract, ec2_refuses, fund, publish_ec2_state

EC2 = boto3.client("ec2", region_name=REGION)
PASSWORD = "correct-horse-42"
LIMITS = current_environment().gpu_limits


@pytest.fixture
def make_user(gpufarm):
    """A user who signed up through the public gpufarm registration, as an attacker would."""

    def make() -> tuple[str, dict[str, str]]:
        email = f"spender-{uuid.uuid4().hex[:10]}@example.com"
        registered = gpufarm.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Spender"}
        )
        assert registered.status_code == 201, registered.text
        login = gpufarm.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        return registered.json()["user"]["id"], {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}

    return make


def live_instances() -> set[str]:
    reservations = EC2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
    return {
        instance["InstanceId"] for reservation in reservations["Reservations"] for instance in reservation["Instances"]
    }


def tagged(contract_id: str) -> list[dict]:
    reservations = EC2.describe_instances(Filters=[{"Name": "tag:aiplane:contract", "Values": [contract_id]}])[
        "Reservations"
    ]
    return [
        instance
        for reservation in reservations
        for instance in reservation["Instances"]
        if instance["State"]["Name"] != "terminated"
    ]


def balance(user_id: str) -> int:
    return billing.balance_cents(user_id)


@pytest.fixture(autouse=True)
def terminate_what_the_test_launched():
    """Leave no running instances behind: the local harness runs an agent process for each."""
    before = live_instances()
    yield
    launched = live_instances() - before
    if launched:
        EC2.terminate_instances(InstanceIds=sorted(launched))


@pytest.fixture
def unqueued(monkeypatch) -> list[dict]:
    """Contracts are written and held but their messages kept here, to deliver them by hand."""
    messages: list[dict] = []
    monkeypatch.setattr(contracts, "enqueue", messages.extend)
    return messages


# Holds refuse before anything is queued
@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/gpu/instances/batch", {"aws_count": 100}),
        ("/api/v1/gpu/instances/reserve", {"count": 20, "filters": {"provider": "aws"}}),
        ("/api/v1/gpu/instances/aws/p5.48xlarge", {"duration_hours": 24}),
    ],
)
def test_a_new_user_without_credits_launches_nothing(gpufarm, provisioning, make_user, path, body):
    user_id, headers = make_user()
    before_instances, before_depth = live_instances(), provisioning.depth()
    response = gpufarm.post(path, json=body, headers=headers)
    assert response.status_code == 402, response.text
    answer = response.json()
    assert set(answer) == {"error", "code", "details"} and answer["code"] == "INSUFFICIENT_CREDITS"
    assert (
        answer["details"]["allowed"] is False
        and answer["details"]["balance"] == 0.0
        and answer["details"]["required"] > 0
    )
    assert provisioning.depth() == before_depth
    provisioning.run_worker()
    assert live_instances() <= before_instances
    assert gpufarm.get("/api/v1/guardrails/spending", headers=headers).json()["window_spent"] == 0.0
    assert holds.fleet_usage(user_id) == (0, 0)


def test_a_marketplace_rental_without_credits_is_refused(gpufarm, provisioning, make_user, marketplaces):
    vast, _ = marketplaces
    _, headers = make_user()
    response = gpufarm.post("/api/v1/gpu/instances/batch", json={"vastai_count": 2}, headers=headers)
    assert response.status_code == 402 and response.json()["code"] == "INSUFFICIENT_CREDITS"
    provisioning.run_worker()
    assert not [request for request in vast.requests if request[0] == "PUT"]  # nothing rented


def test_credits_do_not_buy_past_the_spending_limits(gpufarm, provisioning, make_user):
    user_id, headers = make_user()
    fund(user_id, 5000)
    before_depth = provisioning.depth()
    # 4 × 30 h at the price limit of 1.10 (max_price: failover may cost up to that) = 132 USD: more than an hour's 100.
    response = gpufarm.post(
        "/api/v1/gpu/instances/batch",
        headers=headers,
        json={"aws_count": 4, "filters": {"gpu_model": "A10G", "max_price": 1.1}, "config": {"duration_hours": 30}},
    )
    assert response.status_code == 402 and response.json()["code"] == "SPENDING_LIMIT"
    details = response.json()["details"]
    assert details["allowed"] is False and details["spent"] == 0.0
    assert {"window": "hourly", "spent": 132.0, "limit": 100.0} in details["violations"]
    assert provisioning.depth() == before_depth and balance(user_id) == 5000_00


def test_concurrency_caps_refuse_more_instances_than_the_environment_allows(gpufarm, provisioning, make_user, auth):
    user_id, headers = make_user()
    fund(user_id, 1000)
    before_depth = provisioning.depth()
    too_many = gpufarm.post(
        "/api/v1/gpu/instances/batch",
        headers=headers,
        json={"aws_count": LIMITS.max_instances_per_user + 1, "filters": {"gpu_model": "T4"}},
    )
    assert too_many.status_code == 429 and too_many.json()["code"] == "QUOTA_EXCEEDED"
    assert too_many.json()["details"]["instances"]["limit"] == LIMITS.max_instances_per_user
    assert provisioning.depth() == before_depth and balance(user_id) == 1000_00

    first = gpufarm.post(
        "/api/v1/gpu/instances/reserve",
        headers=headers,
        json={"count": LIMITS.max_instances_per_user - 1, "filters": {"provider": "aws", "gpu_model": "T4"}},
    )
    assert first.status_code == 201, first.text
    second = gpufarm.post("/api/v1/gpu/instances/aws/g4dn.xlarge", headers=headers, json={})
    assert second.status_code == 201
    third = gpufarm.post("/api/v1/gpu/instances/aws/g4dn.xlarge", headers=headers, json={})
    assert third.status_code == 429 and third.json()["details"]["instances"]["in_use"] == LIMITS.max_instances_per_user
    # 8-GPU instances reach the GPU cap while there is room for instances.
    gpu_user, gpu_headers = make_user()
    fund(gpu_user, 1000)
    for _ in range(LIMITS.max_gpus_per_user // 8):
        assert gpufarm.post("/api/v1/gpu/instances/aws/g4dn.metal", headers=gpu_headers, json={}).status_code == 201
    too_many_gpus = gpufarm.post("/api/v1/gpu/instances/aws/g4dn.metal", headers=gpu_headers, json={})
    assert too_many_gpus.status_code == 429
    assert too_many_gpus.json()["details"]["gpus"] == {
        "in_use": LIMITS.max_gpus_per_user,
        "requested": 8,
        "limit": LIMITS.max_gpus_per_user,
    }

    # Admins are exempt from the caps (not from paying).
    admin = gpufarm.post(
        "/api/v1/gpu/instances/batch",
        headers=auth,
        json={"aws_count": LIMITS.max_instances_per_user + 1, "filters": {"gpu_model": "T4"}},
    )
    assert admin.status_code == 201 and admin.json()["total_created"] == LIMITS.max_instances_per_user + 1
    provisioning.purge()


def test_the_hold_settles_against_the_actual_runtime(gpufarm, provisioning, make_user):
    user_id, headers = make_user()
    fund(user_id, 100)
    body = gpufarm.post("/api/v1/gpu/instances/aws/g5.xlarge", headers=headers, json={"duration_hours": 2}).json()
    held = cost_cents(1.006, 2)
    assert balance(user_id) == 100_00 - held and holds.fleet_usage(user_id) == (1, 1)
    assert (
        gpufarm.get("/api/v1/guardrails/spending?window=hourly", headers=headers).json()["window_spent"] == held / 100
    )

    provisioning.run_worker()
    record = contract(body["contract_id"])
    assert record.price_per_hour == 1.006 and record.launched_at is not None
    record.update(actions=[GpuContractRecord.launched_at.set(clock.now() - timedelta(minutes=30))])
    assert gpufarm.delete(f"/api/v1/gpu/instances/aws/{body['contract_id']}", headers=headers).status_code == 200
    publish_ec2_state(record.provider_instance_id, "terminated")
    provisioning.run_worker()

    assert contract(body["contract_id"]).status == "terminated"
    charged = cost_cents(1.006, 0.5)
    assert 100_00 - balance(user_id) in (charged, charged + 1)  # half an hour, a few ms either way
    assert gpufarm.get("/api/v1/guardrails/spending", headers=headers).json()["window_spent"] * 100 == pytest.approx(
        100_00 - balance(user_id)
    )
    assert holds.fleet_usage(user_id) == (0, 0)
    # Settling again gives nothing back twice.
    contracts.settle_spend(contract(body["contract_id"]))
    assert 100_00 - balance(user_id) in (charged, charged + 1)


def test_a_failed_launch_gives_the_whole_hold_back(gpufarm, provisioning, make_user):
    user_id, headers = make_user()
    fund(user_id, 200)
    body = gpufarm.post("/api/v1/gpu/instances/aws/g6.xlarge", headers=headers, json={"duration_hours": 3})
    assert body.status_code == 201 and balance(user_id) < 200_00
    with ec2_refuses(lambda params: "InsufficientInstanceCapacity"):
        provisioning.run_worker()
    assert contract(body.json()["contract_id"]).status == "failed"
    assert balance(user_id) == 200_00 and holds.fleet_usage(user_id) == (0, 0)


def test_lease_renewal_needs_a_new_hold(gpufarm, provisioning, make_user):
    user_id, headers = make_user()
    one_period = cost_cents(0.526, 1)
    fund(user_id, one_period / 100 * 2 + 0.01)  # two contracts' first periods, nothing for a renewal
    renewing = [
        gpufarm.post(
            "/api/v1/gpu/instances/aws/g4dn.xlarge", headers=headers, json={"duration_hours": 1, "auto_renew": True}
        ).json()
        for _ in range(2)
    ]
    provisioning.run_worker()
    past = clock.now() - timedelta(minutes=1)
    for body in renewing:
        contracts.set_status(contract(body["contract_id"]), "running", GpuContractRecord.ends_at.set(past))
    fund(user_id, one_period / 100)  # enough to renew exactly one of them

    swept = contracts.sweep_leases()
    assert swept["renewed"] >= 1 and swept["terminated"] >= 1
    statuses = sorted(contract(body["contract_id"]).status for body in renewing)
    assert statuses == ["running", "terminating"]
    renewed = next(
        contract(body["contract_id"]) for body in renewing if contract(body["contract_id"]).status == "running"
    )
    assert renewed.ends_at > clock.now() + timedelta(minutes=55) and len(renewed.hold_ids) == 2
    assert balance(user_id) == 1


# Failover never raises price or size
def test_a_small_request_never_fails_over_to_a_larger_or_pricier_type(gpufarm, auth, provisioning):
    body = gpufarm.post("/api/v1/gpu/instances/aws/g5.xlarge", headers=auth, json={}).json()
    with ec2_refuses(
        lambda params: "InsufficientInstanceCapacity" if params.get("InstanceType") == "g5.xlarge" else None
    ) as calls:
        provisioning.run_worker()
    record = contract(body["contract_id"])
    assert record.status == "failed" and {call["InstanceType"] for call in calls} == {"g5.xlarge"}
    assert any(reason.startswith("capacity: g5.xlarge in us-east-1a (on-demand)") for reason in record.failure_reasons)
    assert any(reason.startswith("price cap: g5.2xlarge") for reason in record.failure_reasons)

    # A generous max_price allows pricier single-A10G types, never ones with more GPUs.
    generous = gpufarm.post("/api/v1/gpu/instances/aws/g5.xlarge", headers=auth, json={"max_price": 50}).json()
    with ec2_refuses(lambda params: "InsufficientInstanceCapacity") as calls:
        provisioning.run_worker()
    tried = {call["InstanceType"] for call in calls}
    assert tried == {"g5.xlarge", "g5.2xlarge", "g5.4xlarge", "g5.8xlarge", "g5.16xlarge"}
    assert contract(generous["contract_id"]).status == "failed"


def test_max_price_below_the_offer_is_refused(gpufarm, auth, provisioning):
    before = provisioning.depth()
    response = gpufarm.post("/api/v1/gpu/instances/aws/g5.xlarge", headers=auth, json={"max_price": 0.5})
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"
    assert provisioning.depth() == before


def test_spot_never_becomes_on_demand_unless_the_request_allows_it(gpufarm, auth, provisioning):
    body = gpufarm.post("/api/v1/gpu/instances/aws/g4dn.xlarge", headers=auth, json={"market": "spot"}).json()
    with ec2_refuses(
        lambda params: (
            "InsufficientInstanceCapacity" if params.get("InstanceMarketOptions.MarketType") == "spot" else None
        )
    ) as calls:
        provisioning.run_worker()
    assert contract(body["contract_id"]).status == "failed"
    assert calls and all(call.get("InstanceMarketOptions.MarketType") == "spot" for call in calls)
    assert {call["InstanceMarketOptions.SpotOptions.MaxPrice"] for call in calls} == {"0.5260"}  # capped at the limit


def test_unauthorized_fails_at_once_with_the_reason(gpufarm, auth, provisioning):
    body = gpufarm.post("/api/v1/gpu/instances/aws/g5.xlarge", headers=auth, json={"max_price": 2}).json()
    with ec2_refuses(lambda params: "UnauthorizedOperation") as calls:
        provisioning.run_worker()
    record = contract(body["contract_id"])
    assert len(calls) == 1 and record.status == "failed"
    assert record.failure_reasons == ["unauthorized: g5.xlarge in us-east-1a (on-demand): UnauthorizedOperation"]


# Idempotent launches
def test_a_redelivered_message_starts_no_second_instance(gpufarm, auth, provisioning, unqueued, monkeypatch):
    body = gpufarm.post("/api/v1/gpu/instances/aws/g5.xlarge", headers=auth, json={}).json()
    [message] = unqueued
    real_record_launch = provisioner._record_launch

    def crash(*args, **kwargs):
        raise RuntimeError("worker died between RunInstances and recording it")

    monkeypatch.setattr(provisioner, "_record_launch", crash)
    with ec2_refuses(lambda params: None) as calls, pytest.raises(RuntimeError):
        provisioner.handle_message(message)
    assert len(tagged(body["contract_id"])) == 1
    assert calls[0]["ClientToken"] == provisioner.client_token(body["contract_id"])

    monkeypatch.setattr(provisioner, "_record_launch", real_record_launch)
    provisioner.handle_message(message)  # the redelivery adopts the instance
    provisioner.handle_message(message)  # and a duplicate after that is a no-op
    [instance] = tagged(body["contract_id"])
    record = contract(body["contract_id"])
    assert record.provider_instance_id == instance["InstanceId"] and record.attempts[-1]["result"] == "adopted"


def test_concurrent_deliveries_share_one_instance_through_the_client_token(gpufarm, auth, unqueued, monkeypatch):
    body = gpufarm.post("/api/v1/gpu/instances/aws/g6.xlarge", headers=auth, json={}).json()
    real_record_launch = provisioner._record_launch
    # Worker A launched and has not recorded it yet; worker B looked before A's instance existed.
    monkeypatch.setattr(provisioner, "_record_launch", lambda *args, **kwargs: None)
    provisioner.provision(body["contract_id"])
    monkeypatch.setattr(provisioner, "_record_launch", real_record_launch)
    monkeypatch.setattr(provisioner, "_instance_tagged_with", lambda contract_id: None)
    provisioner.provision(body["contract_id"])
    [instance] = tagged(body["contract_id"])
    assert contract(body["contract_id"]).provider_instance_id == instance["InstanceId"]


# Reconciliation
def test_reconciliation_terminates_tagged_instances_no_contract_tracks(
    gpufarm, auth, provisioning, local_stack, caplog
):
    tracked = gpufarm.post("/api/v1/gpu/instances/aws/g4dn.xlarge", headers=auth, json={}).json()
    provisioning.run_worker()
    tracked_instance = contract(tracked["contract_id"]).provider_instance_id
    tags = [
        {"Key": "aiplane:contract", "Value": "contract_nobodyknows"},
        {"Key": "aiplane:environment", "Value": get_settings().environment},
    ]
    stray = EC2.run_instances(
        ImageId="ami-12345678",
        InstanceType="g4dn.xlarge",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]
    other_environment = EC2.run_instances(
        ImageId="ami-12345678",
        InstanceType="g4dn.xlarge",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [tags[0], {"Key": "aiplane:environment", "Value": "prod"}]}
        ],
    )["Instances"][0]["InstanceId"]

    local_stack.dispatchers.fire_schedule_once(resources.GPU_RECONCILE)  # the rule's Scheduled Event
    provisioning.run_worker()

    state = {
        i["InstanceId"]: i["State"]["Name"]
        for r in EC2.describe_instances(InstanceIds=[stray, tracked_instance, other_environment])["Reservations"]
        for i in r["Instances"]
    }
    assert state[stray] in ("shutting-down", "terminated")
    assert state[tracked_instance] in ("pending", "running") and state[other_environment] in ("pending", "running")
    logged = [
        (entry.instance_id, entry.contract_id)
        for entry in caplog.records
        if entry.getMessage() == "terminating a GPU instance no contract tracks"
    ]
    assert (stray, "contract_nobodyknows") in logged and tracked_instance not in {instance for instance, _ in logged}
    EC2.terminate_instances(InstanceIds=[other_environment])


def test_reconciliation_fails_contracts_whose_message_was_lost(gpufarm, make_user, unqueued):
    user_id, headers = make_user()
    fund(user_id, 10)
    body = gpufarm.post("/api/v1/gpu/instances/aws/g4dn.xlarge", headers=headers, json={}).json()
    assert balance(user_id) < 10_00
    contract(body["contract_id"]).update(
        actions=[
            GpuContractRecord.created_at.set(clock.now() - provisioner.PROVISIONING_HORIZON - timedelta(minutes=1))
        ]
    )
    assert provisioner.reconcile()["failed"] >= 1
    record = contract(body["contract_id"])
    assert record.status == "failed" and record.failure_reasons[0].startswith("retries exhausted")
    assert balance(user_id) == 10_00 and holds.fleet_usage(user_id) == (0, 0)


def test_reconciliation_finishes_a_contract_whose_terminated_event_was_lost(gpufarm, make_user, provisioning):
    user_id, headers = make_user()
    fund(user_id, 10)
    body = gpufarm.post("/api/v1/gpu/instances/aws/g4dn.xlarge", headers=headers, json={}).json()
    provisioning.run_worker()
    assert gpufarm.delete(f"/api/v1/gpu/instances/aws/{body['contract_id']}", headers=headers).status_code == 200
    assert contract(body["contract_id"]).status == "terminating"  # EC2's "terminated" event never comes
    assert provisioner.reconcile()["finished"] >= 1
    assert contract(body["contract_id"]).status == "terminated"
    assert balance(user_id) >= 10_00 - 1 and holds.fleet_usage(user_id) == (0, 0)


# Failures that exhaust their retries
def test_a_message_that_exhausts_its_retries_marks_its_contract_failed(gpufarm, make_user, local_stack, unqueued):
    user_id, headers = make_user()
    fund(user_id, 10)
    body = gpufarm.post("/api/v1/gpu/instances/aws/g4dn.xlarge", headers=headers, json={}).json()
    sqs = boto3.client("sqs", region_name=REGION)
    queue = resources.Queue(
        f"provisioning-retries-{uuid.uuid4().hex[:6]}",
        "test",
        explicit_visibility_s=0,
        max_receive_count=2,
        consumer=resources.PROVISIONING_QUEUE.consumer,
    )
    urls = create_queue_with_dlq(sqs, "aiplane-local", queue)
    arn = sqs.get_queue_attributes(QueueUrl=urls[queue.name], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=urls[queue.name], MessageBody=json.dumps(unqueued[0]))
    with ec2_refuses(lambda params: "RequestLimitExceeded"):  # throttled: SQS retries the whole contract
        local_stack.dispatchers.deliver_once(sqs, queue, urls[queue.name], arn)
        assert contract(body["contract_id"]).status == "provisioning"  # one delivery left
        for _ in range(3):
            local_stack.dispatchers.deliver_once(sqs, queue, urls[queue.name], arn)
    dead = sqs.receive_message(QueueUrl=urls[queue.dlq_name], WaitTimeSeconds=0).get("Messages", [])
    assert [json.loads(message["Body"]) for message in dead] == [unqueued[0]]
    record = contract(body["contract_id"])
    assert record.status == "failed" and "RequestLimitExceeded" in record.failure_reasons[0]
    assert record.failure_reasons[0].startswith("retries exhausted")
    assert balance(user_id) == 10_00 and not tagged(body["contract_id"])
