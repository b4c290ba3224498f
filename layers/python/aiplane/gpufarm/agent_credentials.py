"""The credential a GPU contract's agent authenticates with: one per contract.

It is an API key of scope `gpu-agent` (stored as its SHA-256 like every key, see
`aiplane.identity.api_keys`), which the auth path accepts on the agent routes only, for that
contract only. It never enters user data: the provisioner keeps it in a SecureString SSM
parameter per contract, tagged with the instance's ARN once EC2 has named the instance, and the
instance role may read a parameter only when that tag is the instance's own
(`ec2:SourceInstanceARN`). User data names the parameter; the instance fetches it at boot.
Revoked, and the parameter deleted, when the contract ends.
"""

from __future__ import annotations

from functools import cache

from botocore.exceptions import ClientError

from aiplane.data.aws import client
from aiplane.gpufarm.records import GpuContractRecord
from aiplane.identity.api_keys import GPU_AGENT_SCOPE, IssuedKey, issue_api_key, revoke_api_key
from aiplane.settings import get_settings
from aiplane_shared.resources import agent_credential_parameter

INSTANCE_ARN_TAG = "aiplane:instance-arn"  # the instance role's condition compares it with ec2:SourceInstanceARN
CONTRACT_TAG = "aiplane:contract"


def parameter_name(contract_id: str) -> str:
    return agent_credential_parameter(get_settings().resource_prefix, contract_id)


def issue(owner_id: str, contract_id: str) -> IssuedKey:
    return issue_api_key(owner_id, f"gpu agent {contract_id}", scope=GPU_AGENT_SCOPE, contract_id=contract_id)


@cache
def _partition_and_account() -> tuple[str, str]:
    identity = client("sts").get_caller_identity()
    return identity["Arn"].split(":")[1], identity["Account"]


def publish(contract_id: str, credential: str, ec2_instance_id: str) -> None:
    """Store the credential where only that instance can read it."""
    partition, account = _partition_and_account()
    name = parameter_name(contract_id)
    ssm = client("ssm")
    # Overwrite: a redelivered launch message publishes again for the same contract.
    ssm.put_parameter(
        Name=name,
        Type="SecureString",
        Value=credential,
        Overwrite=True,
        Description=f"GPU agent credential of {contract_id}",
    )
    ssm.add_tags_to_resource(
        ResourceType="Parameter",
        ResourceId=name,
        Tags=[
            {"Key": CONTRACT_TAG, "Value": contract_id},
            {
                "Key": INSTANCE_ARN_TAG,
                "Value": f"arn:{partition}:ec2:{get_settings().region}:{account}:instance/{ec2_instance_id}",
            },
        ],
    )


def revoke(record: GpuContractRecord) -> None:
    """The contract has ended: its agent credential stops working and its parameter goes."""
    if record.agent_key_hash:
        revoke_api_key(record.agent_key_hash)
    try:
        client("ssm").delete_parameter(Name=parameter_name(record.contract_id))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise
