"""The appproxy workers' Redis in the cloud: ElastiCache Serverless (Valkey) in a VPC, its URL in
the appproxy-redis secret, and the functions that use it in that VPC."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from aiplane_infra.constructs.access import FUNCTION_ACCESS
from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name


def test_serverless_valkey_in_a_vpc_with_its_url_in_the_secret(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    data = templates["data"]
    data.has_resource_properties(
        "AWS::ElastiCache::ServerlessCache",
        {
            "Engine": "valkey",
            "ServerlessCacheName": physical_name(prefix, "appproxy"),
            "SubnetIds": Match.any_value(),
            "SecurityGroupIds": Match.any_value(),
        },
    )
    (secret,) = [
        definition
        for definition in data.find_resources("AWS::SecretsManager::Secret").values()
        if definition["Properties"]["Name"] == physical_name(prefix, resources.APPPROXY_REDIS_SECRET.name)
    ]
    template = json.dumps(secret["Properties"]["GenerateSecretString"]["SecretStringTemplate"])
    assert "rediss://" in template and "Endpoint.Address" in template and "Endpoint.Port" in template
    data.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway"})  # DynamoDB, no NAT
    data.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress", {"FromPort": 6379, "ToPort": 6379, "IpProtocol": "tcp"}
    )


def test_the_functions_that_use_it_run_in_its_vpc(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    users = {name for name, access in FUNCTION_ACCESS.items() if resources.APPPROXY_REDIS_SECRET in access.read}
    assert users == {
        "appproxy_circuits",
        "appproxy_endpoints",
        "appproxy_proxy",
        "appproxy_workers",
        "appproxy_worker_liveness",
        "appproxy_idle_circuits",
        "appproxy_route_health",
    }
    for stack in ("api-appproxy", "async"):
        for definition in templates[stack].find_resources("AWS::Lambda::Function").values():
            name = definition["Properties"].get("FunctionName", "")
            in_vpc = "VpcConfig" in definition["Properties"]
            assert in_vpc == (name.removeprefix(f"{prefix}-") in users), name
