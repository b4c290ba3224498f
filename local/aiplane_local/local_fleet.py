"""This machine as a GPU host of the local stack's gpufarm fleet (local stack only).

gpufarm's agent routes take only a running contract's agent credential, for that contract's
instance at the address recorded for it. So that the one local agent `make run` starts can serve
uploaded models and answer the proxy, this machine is enrolled the way the provisioner enrolls an
instance: an EC2 (moto) instance standing for it, tagged with the agent's loopback address
(`AGENT_ADDRESS_TAG`), a `running` contract of the bootstrap admin tracking it, and that
contract's agent credential, which also speaks for its mlworker worker (`agent_worker_id`).
The instance carries no `aiplane:contract` tag, so neither the instance supervisor nor the
reconciliation touches it, and the contract has no lease end. Its agent is shared: every local
user's models may be served here, their proxy requests may reach it, and (its mlworker worker is
shared as well) their tasks and Jupyter services run on it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiplane.data.aws import client
from aiplane.gpufarm import agent_credentials, agent_liveness, contract_states, contracts
from aiplane.gpufarm.records import GpuAgentRecord, GpuContractRecord
from aiplane.identity.api_keys import hash_key
from aiplane.identity.principal import BOOTSTRAP_ADMIN_ID, agent_worker_id
from aiplane.mlworker import workers
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.schemas import RegisterWorkerRequest
from aiplane_local.gpu_agents import AGENT_ADDRESS_TAG, AGENT_HOST

INSTANCE_TYPE = "m5.large"  # no GPU type: locally GPUs are scheduling slots, not devices
IMAGE_ID = "ami-12345678"  # moto runs any image id


@dataclass(frozen=True)
class LocalHost:
    contract_id: str
    instance_id: str
    worker_id: str
    credential: str


def enroll_this_machine(agent_port: int) -> LocalHost:
    contract_id = f"contract_local_{uuid.uuid4().hex[:12]}"
    instance = client("ec2").run_instances(
        ImageId=IMAGE_ID,
        InstanceType=INSTANCE_TYPE,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": AGENT_ADDRESS_TAG, "Value": f"{AGENT_HOST}:{agent_port}"},
                    {"Key": "Name", "Value": "this machine"},
                ],
            }
        ],
    )["Instances"][0]
    instance_id = instance["InstanceId"]
    credential = agent_credentials.issue(BOOTSTRAP_ADMIN_ID, contract_id).api_key
    moment = contracts.now()
    contract_states.set_index_keys(
        GpuContractRecord(
            GpuContractRecord.key(contract_id),
            contract_id=contract_id,
            user_id=BOOTSTRAP_ADMIN_ID,
            provider="aws",
            offer_id=INSTANCE_TYPE,
            status=contracts.RUNNING,
            created_at=moment,
            updated_at=moment,
            provider_instance_id=instance_id,
            instance_type=INSTANCE_TYPE,
            zone=instance["Placement"]["AvailabilityZone"],
            agent_key_hash=hash_key(credential),
        )
    ).save()
    contract_states.add_running(1)  # written running outright: counted as set_status would
    # Shared before it registers: registration keeps what an admin set for the same contract.
    agent_liveness.set_index_keys(
        GpuAgentRecord(
            GpuAgentRecord.key(instance_id),
            instance_id=instance_id,
            url=f"http://{AGENT_HOST}:{agent_port}",
            owner_id=BOOTSTRAP_ADMIN_ID,
            contract_id=contract_id,
            shared=True,
            registered_at=moment,
            heartbeat_at=moment,
            expires_at_epoch=0,  # not live until its agent registers
        )
    ).save()
    # Its mlworker worker too, so that every local user's tasks run on it: only an admin shares a
    # worker, and the agent's own registration (as the same owner) keeps it shared.
    worker_id = agent_worker_id(contract_id)
    workers.register_worker(
        RegisterWorkerRequest(id=worker_id, shared=True), Actor(user_id=BOOTSTRAP_ADMIN_ID), admin=True
    )
    return LocalHost(contract_id, instance_id, worker_id, credential)
