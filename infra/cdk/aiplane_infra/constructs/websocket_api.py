"""A family's WebSocket API (`/ws`, mlworker and gpufarm): `$connect`, `$disconnect` and
`$default` on one function (`functions/websocket`, the family in AIPLANE_FAMILY), `$default`
answering as its route response. `$connect` authenticates in the function with the family's
credentials (as the HTTP routes do). Status changes reach the connections through the
live-updates sender (async stack), which finds the management endpoint in SSM."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_logs as logs
from constructs import Construct

from aiplane_infra.constructs.functions import FunctionFactory, log_retention
from aiplane_shared.resources import WEBSOCKET_FUNCTION, websocket_function_name

ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "routeKey": "$context.routeKey",
    "connectionId": "$context.connectionId",
    "eventType": "$context.eventType",
    "status": "$context.status",
    "requestTime": "$context.requestTime",
}


class FamilyWebSocketApi(Construct):
    def __init__(self, scope: Construct, construct_id: str, family: str, functions: FunctionFactory) -> None:
        super().__init__(scope, construct_id)
        environment = functions.environment
        self.function = functions.make(
            websocket_function_name(family),
            WEBSOCKET_FUNCTION,
            extra_environment={"AIPLANE_FAMILY": family},
            snap_start=True,
        )
        alias = functions.live_alias(self.function)
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=f"{environment.resource_prefix}-{family}-ws",
            description=f"aiplane {family} /ws (live updates)",
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Connect", alias)
            ),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Disconnect", alias)
            ),
            default_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Message", alias), return_response=True
            ),
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=environment.name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=environment.throttle_rate_limit, burst_limit=environment.throttle_burst_limit
            ),
        )
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=f"/aws/apigateway/{environment.resource_prefix}-{family}-ws/access",
            retention=log_retention(environment),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        stage = self.stage.node.default_child
        stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
        )
        # Execution logs, errors only (messages carry task and contract details), as the REST APIs.
        stage.default_route_settings = apigwv2.CfnStage.RouteSettingsProperty(
            logging_level="ERROR",
            data_trace_enabled=False,
            throttling_rate_limit=environment.throttle_rate_limit,
            throttling_burst_limit=environment.throttle_burst_limit,
        )
