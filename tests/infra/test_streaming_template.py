"""Streaming routes run on response-streaming integrations (the Lambda Web Adapter in front of the
group's app) with up to 15 minutes; every other route keeps API Gateway's 29 s. API Gateway calls
each function's SnapStart alias."""

from __future__ import annotations

import json

from aiplane_infra.constructs.functions import LIVE_ALIAS, streaming_runtime
from aiplane_shared.environments import BUFFERED_ROUTE_TIMEOUT_S, STREAMING_ROUTE_TIMEOUT_S, get_environment
from aiplane_shared.families import FAMILIES
from aiplane_shared.resources import physical_name
from aiplane_shared.routes import STREAMING_ROUTES, extra_routes_of, function_name, groups_of, routes_of
from tests.infra.iam import function_resource


def _integrations(template) -> dict[tuple[str, str], dict]:
    """(HTTP method, full path) -> the method's Integration."""
    api_resources = template.find_resources("AWS::ApiGateway::Resource")

    def path_of(logical_id: str) -> str:
        properties = api_resources[logical_id]["Properties"]
        parent = properties["ParentId"]
        return (path_of(parent["Ref"]) if "Ref" in parent else "") + f"/{properties['PathPart']}"

    found = {}
    for method in template.find_resources("AWS::ApiGateway::Method").values():
        properties = method["Properties"]
        resource = properties["ResourceId"]
        found[(properties["HttpMethod"], path_of(resource["Ref"]) if "Ref" in resource else "/")] = properties[
            "Integration"
        ]
    return found


def _alias_of(template, function_id: str) -> str:
    (alias_id,) = [
        logical_id
        for logical_id, alias in template.find_resources("AWS::Lambda::Alias").items()
        if alias["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return alias_id


def test_streaming_routes_stream_for_up_to_15_minutes_and_the_rest_keep_29_s(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    seen_streaming = set()
    for family in FAMILIES:
        template = templates[f"api-{family}"]
        integrations = _integrations(template)
        routes = (*routes_of(family), *extra_routes_of(family))
        streaming_groups = {route.group for route in routes if route.streams}
        for route in routes:
            integration = integrations[(route.method, route.path)]
            function_id, _ = function_resource(template, physical_name(prefix, function_name(family, route.group)))
            uri = json.dumps(integration["Uri"])
            assert {"Ref": _alias_of(template, function_id)} in integration["Uri"]["Fn::Join"][1], route
            if route.group in streaming_groups:
                assert integration["ResponseTransferMode"] == "STREAM", route
                assert "/2021-11-15/functions/" in uri and "/response-streaming-invocations" in uri, route
            else:
                assert integration["ResponseTransferMode"] == "BUFFERED", route
                assert "/2015-03-31/functions/" in uri and uri.endswith('/invocations"]]}'), route
            expected_s = STREAMING_ROUTE_TIMEOUT_S if route.streams else BUFFERED_ROUTE_TIMEOUT_S
            assert integration["TimeoutInMillis"] == expected_s * 1000, route
            if route.streams:
                seen_streaming.add((family, route.method, route.path))
    assert seen_streaming == set(STREAMING_ROUTES)


def test_streaming_functions_run_under_the_web_adapter_and_buffered_ones_end_with_the_gateway(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    for family in FAMILIES:
        template = templates[f"api-{family}"]
        streaming_groups = {route.group for route in routes_of(family) if route.streams}
        for group in groups_of(family):
            _, function = function_resource(template, physical_name(prefix, function_name(family, group)))
            properties = function["Properties"]
            variables = properties["Environment"]["Variables"]
            if group in streaming_groups:
                handler, layer, environment = streaming_runtime(family, group)
                assert properties["Handler"] == handler and properties["Timeout"] == STREAMING_ROUTE_TIMEOUT_S
                assert {key: variables[key] for key in environment} == environment
                assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
                assert "LambdaAdapterLayerX86" in json.dumps(properties["Layers"])
            else:
                assert properties["Timeout"] == BUFFERED_ROUTE_TIMEOUT_S
                assert "AWS_LWA_INVOKE_MODE" not in variables


def test_api_functions_use_snapstart_through_a_published_alias(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    for family in FAMILIES:
        template = templates[f"api-{family}"]
        for name in (*(function_name(family, group) for group in groups_of(family)), f"{family}_authorizer"):
            function_id, function = function_resource(template, physical_name(prefix, name))
            assert function["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}, name
            alias = template.find_resources("AWS::Lambda::Alias")[_alias_of(template, function_id)]["Properties"]
            assert alias["Name"] == LIVE_ALIAS
            assert "Fn::GetAtt" in alias["FunctionVersion"]  # the version this deploy published
        (authorizer,) = template.find_resources("AWS::ApiGateway::Authorizer").values()
        authorizer_id, _ = function_resource(template, physical_name(prefix, f"{family}_authorizer"))
        assert {"Ref": _alias_of(template, authorizer_id)} in json.loads(
            json.dumps(authorizer["Properties"]["AuthorizerUri"])
        )["Fn::Join"][1]
        for permission in template.find_resources("AWS::Lambda::Permission").values():
            assert "Ref" in permission["Properties"]["FunctionName"]  # an alias (a function would be Fn::GetAtt)
