"""Runtime files in the template: binary bodies pass through API Gateway, and the API functions
may check the event bus (GET /system/services)."""

from __future__ import annotations

from aws_cdk.assertions import Match


def test_family_apis_accept_binary_bodies(environment_templates):
    _, templates = environment_templates
    templates["api-runtime"].has_resource_properties("AWS::ApiGateway::RestApi", {
        "BinaryMediaTypes": Match.array_with(["multipart/form-data", "*/*"])})


def test_api_functions_may_describe_the_event_bus(environment_templates):
    _, templates = environment_templates
    templates["api-runtime"].has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": Match.array_with(["events:PutEvents", "events:DescribeEventBus"])})])}})
