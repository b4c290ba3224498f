"""Shared helpers for the GPU fleet tests: the gpufarm client, the provisioning queue worker run
the way the Lambda event source mapping runs it, and EC2 error injection at the API boundary."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from aiplane import clock
from aiplane.commerce import billing, guardrails
from aiplane.commerce.windows import WINDOW_NAMES
from aiplane.data.aws import client
from aiplane.data.secrets import clear_secret_cache
from aiplane.gpufarm import agent_credentials, contract_states, contracts
from aiplane.gpufarm.records import GpuContractRecord
from aiplane.identity.api_keys import hash_key
from aiplane.identity.principal import BOOTSTRAP_ADMIN_ID
from aiplane.settings import get_settings
from aiplane_local.gpu_agents import AGENT_ADDRESS_TAG
from aiplane_shared import resources
from aiplane_shared.resources import IONET_API_KEY_SECRET, VASTAI_API_KEY_SECRET
from tests.integration.gpufarm.marketplace_standins import IoNetStandIn, VastAiStandIn

REGION = "us-east-1"


@pytest.fixture
def gpufarm(family_clients):
    return family_clients["gpufarm"]


@pytest.fixture
def auth(admin_api_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_api_key}"}


def fund(user_id: str, dollars: float) -> None:
    """Credits for GPU spend, as an operator records a paid invoice."""
    billing.create_payment(user_id, billing.validate_payment(dollars, "USD", "invoice", None), None)


def let_admin_spend() -> None:
    """The bootstrap admin's GPU spend is held like everyone's: it gets credits, and fresh
    spending windows (one admin spends for every test of the session)."""
    if billing.balance_cents(BOOTSTRAP_ADMIN_ID) < 5_000_00:
        fund(BOOTSTRAP_ADMIN_ID, 10_000)
    for window in WINDOW_NAMES:
        guardrails.reset(BOOTSTRAP_ADMIN_ID, window)


@pytest.fixture(autouse=True)
def admin_can_spend() -> None:
    let_admin_spend()


@pytest.fixture
def marketplaces(set_setting):
    """vast.ai and io.net stand-ins with their keys in Secrets Manager."""
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    vast, ionet = VastAiStandIn("vast-key"), IoNetStandIn("ionet-key")
    secrets.put_secret_value(
        SecretId=get_settings().resource(VASTAI_API_KEY_SECRET.name), SecretString=json.dumps({"api_key": "vast-key"})
    )
    secrets.put_secret_value(
        SecretId=get_settings().resource(IONET_API_KEY_SECRET.name), SecretString=json.dumps({"api_key": "ionet-key"})
    )
    set_setting("AIPLANE_VASTAI_API_URL", vast.url)
    set_setting("AIPLANE_IONET_API_URL", ionet.url)
    clear_secret_cache()
    yield vast, ionet
    vast.stop()
    ionet.stop()
    # Back to "no key configured" for the other tests.
    for secret in (VASTAI_API_KEY_SECRET, IONET_API_KEY_SECRET):
        secrets.put_secret_value(
            SecretId=get_settings().resource(secret.name), SecretString=json.dumps({"api_key": ""})
        )
    clear_secret_cache()


class ProvisioningQueue:
    def __init__(self, local_stack) -> None:
        self.stack = local_stack
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.url = local_stack.provisioned.queue_urls[resources.PROVISIONING_QUEUE.name]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    def run_worker(self, rounds: int = 3) -> None:
        """Deliver what is on the queue to the provisioner until it is empty."""
        for _ in range(rounds):
            if not self.stack.dispatchers.deliver_once(self.sqs, resources.PROVISIONING_QUEUE, self.url, self.arn):
                return

    def depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )
        return sum(int(value) for value in attributes["Attributes"].values())

    def purge(self) -> None:
        while self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
            self.run_worker(1)


@pytest.fixture
def provisioning(local_stack) -> ProvisioningQueue:
    queue = ProvisioningQueue(local_stack)
    queue.run_worker(10)
    return queue


@contextmanager
def ec2_refuses(decide: Callable[[dict], str | None]) -> Iterator[list[dict]]:
    """RunInstances answers with the error code `decide(request params)` returns (None: let it
    through to EC2), the way EC2 answers when a zone has no capacity."""
    calls: list[dict] = []

    def before_call(params, **_):
        body = params.get("body", {})
        calls.append(body)
        code = decide(body)
        if code is None:
            return None
        return AWSResponse("https://ec2.local", 500, {}, None), {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }

    events = client("ec2").meta.events
    events.register("before-call.ec2.RunInstances", before_call, unique_id="ec2-refuses")
    try:
        yield calls
    finally:
        events.unregister("before-call.ec2.RunInstances", unique_id="ec2-refuses")


def contract(contract_id: str):
    record = contracts.get_contract(contract_id)
    assert record is not None
    return record


def ec2_event(instance_id: str, state: str) -> dict:
    return {
        "source": "aws.ec2",
        "detail-type": "EC2 Instance State-change Notification",
        "detail": {"instance-id": instance_id, "state": state},
    }


def publish_ec2_state(instance_id: str, state: str) -> None:
    """EC2 publishes state changes on the default bus (moto does not: publish it as EC2 would)."""
    event = ec2_event(instance_id, state)
    boto3.client("events", region_name=REGION).put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
            }
        ]
    )


def new_user(name: str) -> tuple[str, dict[str, str]]:
    """A fresh user and the Authorization header of one of their API keys."""
    from aiplane.identity.api_keys import issue_api_key
    from aiplane.identity.users import create_user

    user = create_user(f"{name}-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery 9", families=["gpufarm"])
    return user.user_id, {"Authorization": f"Bearer {issue_api_key(user.user_id, name).api_key}"}


@dataclass(frozen=True)
class AgentContract:
    contract_id: str
    instance_id: str
    url: str  # where the local harness lets its agent listen
    auth: dict[str, str]  # the contract's agent credential


def running_contract(user_id: str, agent_port: int = 9) -> AgentContract:
    """A running aws contract of the user's: its moto instance, tagged with the loopback address the
    local harness gives its agent, and its agent credential (as the provisioner issues it)."""
    contract_id = f"contract_{uuid.uuid4().hex[:16]}"
    tags = [
        {"Key": "aiplane:contract", "Value": contract_id},
        {"Key": AGENT_ADDRESS_TAG, "Value": f"127.0.0.1:{agent_port}"},
    ]
    instance = client("ec2").run_instances(
        LaunchTemplate={"LaunchTemplateName": get_settings().resource(resources.GPU_LAUNCH_TEMPLATE.name)},
        InstanceType="g5.xlarge",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]
    credential = agent_credentials.issue(user_id, contract_id)
    moment = clock.now()
    contract_states.set_index_keys(
        GpuContractRecord(
            GpuContractRecord.key(contract_id),
            contract_id=contract_id,
            user_id=user_id,
            provider="aws",
            offer_id="g5.xlarge",
            status=contracts.RUNNING,
            created_at=moment,
            updated_at=moment,
            provider_instance_id=instance["InstanceId"],
            instance_type="g5.xlarge",
            zone=instance["Placement"]["AvailabilityZone"],
            agent_key_hash=hash_key(credential.api_key),
        )
    ).save()
    contract_states.add_running(1)  # written running outright: counted as set_status would
    return AgentContract(
        contract_id,
        instance["InstanceId"],
        f"http://127.0.0.1:{agent_port}",
        {"Authorization": f"Bearer {credential.api_key}"},
    )
