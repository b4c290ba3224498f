"""Live updates in the templates: a WebSocket API per family that has `/ws` (mlworker, gpufarm)
with its $connect/$disconnect/$default routes on the family's WebSocket function, the connections
table with its TTL, and the sender fed by the domain bus rule through the live-updates queue,
allowed to post to connections."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name
from tests.infra.iam import actions_of, function_resource, function_statements


def test_each_ws_family_has_a_websocket_api_with_its_routes(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    for family in ("runtime", "appproxy"):
        assert not templates[f"api-{family}"].find_resources("AWS::ApiGatewayV2::Api"), family
    for family in resources.WEBSOCKET_FAMILIES:
        api = templates[f"api-{family}"]
        (api_id,) = api.find_resources(
            "AWS::ApiGatewayV2::Api", {"Properties": {"ProtocolType": "WEBSOCKET", "Name": f"{prefix}-{family}-ws"}}
        )
        routes = {
            route["Properties"]["RouteKey"]: route for route in api.find_resources("AWS::ApiGatewayV2::Route").values()
        }
        assert set(routes) == {"$connect", "$disconnect", "$default"}, family
        assert all(route["Properties"]["ApiId"] == {"Ref": api_id} for route in routes.values())
        api.has_resource_properties("AWS::ApiGatewayV2::RouteResponse", {"RouteResponseKey": "$default"})
        name = physical_name(prefix, resources.websocket_function_name(family))
        function_id, function = function_resource(api, name)
        assert function["Properties"]["Handler"] == f"functions.{resources.WEBSOCKET_FUNCTION}.handler.handler"
        assert function["Properties"]["Environment"]["Variables"]["AIPLANE_FAMILY"] == family
        (alias_id,) = api.find_resources("AWS::Lambda::Alias", {"Properties": {"FunctionName": {"Ref": function_id}}})
        for integration in api.find_resources("AWS::ApiGatewayV2::Integration").values():
            assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
            assert alias_id in str(integration["Properties"]["IntegrationUri"])  # the function's live alias
        api.has_resource_properties(
            "AWS::ApiGatewayV2::Stage",
            {
                "StageName": env_name,
                "AutoDeploy": True,
                "AccessLogSettings": Match.object_like({"DestinationArn": Match.any_value()}),
                "DefaultRouteSettings": Match.object_like({"LoggingLevel": "ERROR", "DataTraceEnabled": False}),
            },
        )
        api.has_resource_properties(
            "AWS::SSM::Parameter", {"Name": resources.websocket_management_parameter(prefix, family)}
        )


def test_the_connections_table_expires_its_items(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    templates["data"].has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": physical_name(prefix, resources.WEBSOCKET_CONNECTIONS_TABLE.name),
            "TimeToLiveSpecification": {"AttributeName": resources.TTL_ATTRIBUTE, "Enabled": True},
        },
    )


def test_the_sender_is_fed_by_the_bus_and_may_post_to_connections(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    messaging = templates["async"]
    queue = resources.LIVE_UPDATES_QUEUE
    (queue_id,) = [
        logical_id
        for logical_id, definition in messaging.find_resources("AWS::SQS::Queue").items()
        if definition["Properties"]["QueueName"] == physical_name(prefix, queue.name)
    ]
    messaging.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": physical_name(prefix, resources.LIVE_UPDATES_RULE.name),
            "EventPattern": {
                "source": [resources.LIVE_UPDATE_SOURCE],
                "detail-type": [resources.LIVE_UPDATE_DETAIL_TYPE],
            },
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}})],
        },
    )
    sender = physical_name(prefix, queue.consumer)
    _, function = function_resource(messaging, sender)
    assert function["Properties"]["Handler"] == "functions.websocket_sender.handler.handler"
    messaging.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]}, "FunctionResponseTypes": ["ReportBatchItemFailures"]},
    )
    statements = function_statements(messaging, sender)
    assert "execute-api:ManageConnections" in actions_of(statements)
    (manage,) = [s for s in statements if "execute-api:ManageConnections" in str(s["Action"])]
    assert f"/{env_name}/POST/@connections/*" in str(manage["Resource"])
