"""The appproxy coordinator's own domain: mapped with an empty base path, so workers that drop
their coordinator URL's path still reach `/api/worker`."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template

from aiplane_infra.stacks import ApiStack, DataStack
from aiplane_shared.environments import get_environment
from aiplane_shared.families import APPPROXY

CERTIFICATE = "arn:aws:acm:us-east-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"


def test_coordinator_domain_maps_the_appproxy_api_at_the_root():
    environment = get_environment("dev")._replace(
        appproxy_coordinator_domain="coordinator.example.com",
        appproxy_coordinator_certificate_arn=CERTIFICATE,
    )
    app, env = cdk.App(), cdk.Environment(account="111122223333", region=environment.region)
    data = DataStack(app, "appproxy-domain-data", environment, env=env)
    stack = ApiStack(app, "appproxy-domain", environment, APPPROXY, appproxy=data.appproxy_redis.network, env=env)
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::ApiGateway::DomainName",
        {
            "DomainName": "coordinator.example.com",
            "RegionalCertificateArn": CERTIFICATE,
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
            "SecurityPolicy": "TLS_1_2",
        },
    )
    (mapping,) = template.find_resources("AWS::ApiGateway::BasePathMapping").values()
    assert "BasePath" not in mapping["Properties"]  # empty: the coordinator's paths at the root
    template.has_resource_properties(
        "AWS::ApiGateway::BasePathMapping", {"RestApiId": Match.any_value(), "Stage": Match.any_value()}
    )


def test_without_a_coordinator_domain_there_is_none(environment_templates):
    _, templates = environment_templates
    assert not templates[f"api-{APPPROXY}"].find_resources("AWS::ApiGateway::DomainName")
