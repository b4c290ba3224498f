"""The stacks of one environment: data, async, and one API stack per family (a family's routes,
methods and functions need a stack of their own to stay under CloudFormation's resource limit)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from aiplane_infra.constructs.chains import TaskChains
from aiplane_infra.constructs.data import (
    ApiGatewayLogging,
    AppProxyRedis,
    ArtifactStore,
    FunctionNetwork,
    SecretStore,
    SigningKeys,
    StateTables,
)
from aiplane_infra.constructs.family_api import FamilyApi
from aiplane_infra.constructs.fleet_network import FleetNetwork
from aiplane_infra.constructs.functions import FunctionFactory
from aiplane_infra.constructs.gpu_fleet import GpuFleet
from aiplane_infra.constructs.messaging import EventRouting, WorkQueues
from aiplane_infra.constructs.monitoring import Alarms
from aiplane_infra.constructs.websocket_api import FamilyWebSocketApi
from aiplane_shared.environments import Environment
from aiplane_shared.families import APPPROXY
from aiplane_shared.resources import WEBSOCKET_FAMILIES, api_url_parameter, websocket_management_parameter


class DataStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, environment: Environment, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.functions = functions = FunctionFactory(self, "Functions", environment)
        self.tables = StateTables(self, "Tables", environment)
        self.artifacts = ArtifactStore(self, "Artifacts", environment)
        self.secrets = SecretStore(self, "Secrets", environment, functions)
        self.api_gateway_logging = ApiGatewayLogging(self, "ApiGatewayLogging")
        self.signing_keys = SigningKeys(self, "SigningKeys", environment)
        self.fleet_network = FleetNetwork(self, "FleetNetwork", environment)
        self.appproxy_redis = AppProxyRedis(self, "AppProxyRedis", environment)


class AsyncStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        environment: Environment,
        appproxy: FunctionNetwork | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.functions = functions = FunctionFactory(self, "Functions", environment, appproxy=appproxy)
        self.queues = WorkQueues(self, "Queues", environment, functions)
        self.events = EventRouting(self, "Events", environment, self.queues)
        self.chains = TaskChains(self, "Chains", environment, functions)
        self.gpu_fleet = GpuFleet(self, "GpuFleet", environment)


class ApiStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        environment: Environment,
        family: str,
        fleet: FleetNetwork | None = None,
        appproxy: FunctionNetwork | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.functions = functions = FunctionFactory(self, "Functions", environment, fleet=fleet, appproxy=appproxy)
        self.family_api = FamilyApi(self, "Api", family, functions)
        # Published for whoever needs the URL without a cross-stack reference (GPU agents' user data).
        ssm.StringParameter(
            self,
            "ApiUrl",
            parameter_name=api_url_parameter(environment.resource_prefix, family),
            string_value=self.family_api.api.url,
            description=f"{family} API base URL",
        )
        cdk.CfnOutput(self, "BaseUrl", value=self.family_api.api.url, description=f"{family} API (stage URL)")
        if family in WEBSOCKET_FAMILIES:
            self.websocket_api = FamilyWebSocketApi(self, "WebSocket", family, functions)
            # The live-updates sender (async stack) posts to connections through this endpoint.
            ssm.StringParameter(
                self,
                "WebSocketManagementUrl",
                parameter_name=websocket_management_parameter(environment.resource_prefix, family),
                string_value=self.websocket_api.stage.callback_url,
                description=f"{family} WebSocket API management endpoint (PostToConnection)",
            )
            cdk.CfnOutput(
                self, "WebSocketUrl", value=self.websocket_api.stage.url, description=f"{family} /ws (wss URL)"
            )
        if family == APPPROXY and environment.appproxy_coordinator_domain:
            self._coordinator_domain(environment)

    def _coordinator_domain(self, environment: Environment) -> None:
        """The coordinator's own host: its paths at the root (empty base path), for Backend.AI workers."""
        if not environment.appproxy_coordinator_certificate_arn:
            raise ValueError("appproxy_coordinator_domain needs appproxy_coordinator_certificate_arn")
        domain = apigw.DomainName(
            self,
            "CoordinatorDomain",
            domain_name=environment.appproxy_coordinator_domain,
            certificate=acm.Certificate.from_certificate_arn(
                self, "CoordinatorCertificate", environment.appproxy_coordinator_certificate_arn
            ),
            endpoint_type=apigw.EndpointType.REGIONAL,
            security_policy=apigw.SecurityPolicy.TLS_1_2,
        )
        domain.add_base_path_mapping(self.family_api.api, stage=self.family_api.api.deployment_stage)
        cdk.CfnOutput(
            self,
            "CoordinatorDomainTarget",
            value=domain.domain_name_alias_domain_name,
            description="CNAME/alias target of the appproxy coordinator domain (workers' coordinator URL)",
        )


class MonitoringStack(cdk.Stack):
    """The alarms of every other stack (by physical names) and the topic they notify."""

    def __init__(
        self, scope: Construct, construct_id: str, environment: Environment, function_names: list[str], **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.alarms = Alarms(self, "Alarms", environment, function_names)
