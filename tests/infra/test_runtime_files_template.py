"""Runtime files in the template: binary bodies pass through API Gateway, and the API functions
may check the event bus (GET /system/services)."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name
from tests.infra.iam import function_actions


def test_family_apis_accept_binary_bodies(environment_templates):
    _, templates = environment_templates
    templates["api-runtime"].has_resource_properties(
        "AWS::ApiGateway::RestApi", {"BinaryMediaTypes": Match.array_with(["multipart/form-data", "*/*"])}
    )


def test_api_functions_may_describe_the_event_bus(environment_templates):
    env_name, templates = environment_templates
    system = physical_name(get_environment(env_name).resource_prefix, "runtime_system")
    actions = function_actions(templates["api-runtime"], system)
    assert "events:DescribeEventBus" in actions
    assert "events:PutEvents" not in actions  # /executor/sync puts no event any more
