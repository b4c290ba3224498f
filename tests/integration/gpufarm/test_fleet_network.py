"""GPU instances launch into the fleet VPC the CDK app publishes (agent subnets, agents' security
group), skipping zones it has no subnet in; and their user data installs the published artifact."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from aiplane.settings import get_settings
from aiplane_shared import resources
from tests.integration.gpufarm.conftest import REGION, contract
from tests.integration.gpufarm.test_gpu_provisioning import create, ec2_instance

EC2 = boto3.client("ec2", region_name=REGION)
SSM = boto3.client("ssm", region_name=REGION)


@pytest.fixture
def fleet_network():
    vpc = EC2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = EC2.create_subnet(VpcId=vpc, CidrBlock="10.42.16.0/20", AvailabilityZone="us-east-1b")["Subnet"][
        "SubnetId"
    ]
    group = EC2.create_security_group(VpcId=vpc, GroupName="gpu-agents", Description="agents")["GroupId"]
    name = resources.agent_network_parameter(get_settings().resource_prefix)
    SSM.put_parameter(
        Name=name,
        Type="String",
        Overwrite=True,
        Value=json.dumps({"security_group": group, "subnets": [{"zone": "us-east-1b", "subnet": subnet}]}),
    )
    parameters.clear_caches()
    yield subnet, group
    SSM.delete_parameter(Name=name)
    parameters.clear_caches()


def test_instances_launch_in_the_fleet_subnet_with_the_agents_group(gpufarm, auth, provisioning, fleet_network):
    subnet, group = fleet_network
    body = create(gpufarm, auth, "aws", "g5.xlarge@us-east-1a")
    provisioning.run_worker()
    record = contract(body["contract_id"])
    assert record.zone == "us-east-1b"  # 1a has no fleet subnet: skipped like a zone without capacity
    assert record.attempts[0]["error"] == "NoFleetSubnet"
    instance = ec2_instance(record.provider_instance_id)
    assert instance["SubnetId"] == subnet and [g["GroupId"] for g in instance["SecurityGroups"]] == [group]
    encoded = EC2.describe_instance_attribute(InstanceId=record.provider_instance_id, Attribute="userData")["UserData"][
        "Value"
    ]
    script = base64.b64decode(encoded).decode()
    artifact = SSM.get_parameter(Name=resources.agent_artifact_parameter(get_settings().resource_prefix))["Parameter"][
        "Value"
    ]
    assert artifact.startswith("s3://") and f"aws s3 cp --region {REGION} {artifact}" in script
    assert f"AIPLANE_WORKER_ID=gpu-{record.contract_id}" in script and "AIPLANE_MLWORKER_URL=" in script
