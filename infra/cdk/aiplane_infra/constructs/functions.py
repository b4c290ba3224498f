"""Every aiplane Lambda is made the same way: shared code asset, the two layers, the
environment's sizes, Powertools settings, its own log group."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from aiplane_infra import code
from aiplane_infra.constructs.access import FUNCTION_ACCESS, function_statements
from aiplane_infra.constructs.fleet_network import FleetNetwork
from aiplane_shared import resources, streaming
from aiplane_shared.environments import STREAMING_ROUTE_TIMEOUT_S, Environment
from aiplane_shared.resources import APPPROXY_REDIS_SECRET, physical_name

_RETENTION = {1: logs.RetentionDays.ONE_DAY, 14: logs.RetentionDays.TWO_WEEKS, 90: logs.RetentionDays.THREE_MONTHS}
LIVE_ALIAS = "live"  # API Gateway calls this alias: it points at the published (SnapStart) version
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
# What Lambda needs to attach a function to its VPC (ENIs take no resource ARN).
VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


def log_retention(environment: Environment) -> logs.RetentionDays:
    return _RETENTION[environment.log_retention_days]


def streaming_runtime(family: str, group: str) -> tuple[str, str, dict[str, str]]:
    """(handler, layer ARN, environment) of a function that runs its group's app under the Lambda Web Adapter."""
    return streaming.HANDLER, streaming.lwa_layer_arn(cdk.Aws.REGION), streaming.streaming_environment(family, group)


class FunctionFactory(Construct):
    """Holds what every function in a stack shares (code, layers) and makes functions, each with
    its own role granted its row of `access.FUNCTION_ACCESS`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        environment: Environment,
        *,
        fleet: FleetNetwork | None = None,
        appproxy=None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.environment = environment
        self.fleet = fleet  # where the functions that call GPU agents run
        self.appproxy = appproxy  # data.FunctionNetwork: where the functions that use the appproxy Redis run
        self.function_names: list[str] = []  # physical names, for the alarms
        self.code = code.function_code()
        self.layers = [
            lambda_.LayerVersion(
                self,
                "Dependencies",
                code=code.dependencies_layer_code(),
                compatible_runtimes=[code.RUNTIME],
                description="aiplane third-party dependencies",
            ),
            lambda_.LayerVersion(
                self,
                "Domain",
                code=code.domain_layer_code(),
                compatible_runtimes=[code.RUNTIME],
                description="aiplane domain layer",
            ),
        ]

    def make(
        self,
        logical_name: str,
        handler_module: str,
        *,
        access: str | None = None,
        extra_environment: dict[str, str] | None = None,
        timeout_s: int | None = None,
        streams: tuple[str, str] | None = None,
        snap_start: bool = False,
    ) -> lambda_.Function:
        """A function whose handler is `functions.<handler_module>.handler.handler`, or, with
        `streams=(family, group)`, that group's app under the Lambda Web Adapter (15 minutes).
        Its role gets the `access` row (default: `handler_module`)."""
        environment = self.environment
        name = physical_name(environment.resource_prefix, logical_name)
        placement = self._placement(access or handler_module)
        self.function_names.append(name)
        log_group = logs.LogGroup(
            self,
            f"{logical_name}-logs",
            log_group_name=f"/aws/lambda/{name}",
            retention=log_retention(environment),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        handler, layers, variables = f"functions.{handler_module}.handler.handler", list(self.layers), {}
        if streams:
            handler, layer_arn, variables = streaming_runtime(*streams)
            layers.append(lambda_.LayerVersion.from_layer_version_arn(self, f"{logical_name}-lwa", layer_arn))
            timeout_s = STREAMING_ROUTE_TIMEOUT_S
        function = lambda_.Function(
            self,
            logical_name,
            function_name=name,
            runtime=code.RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=handler,
            code=self.code,
            layers=layers,
            role=self._role(logical_name, access or handler_module, log_group, in_vpc=bool(placement)),
            **placement,
            memory_size=environment.lambda_memory_mb,
            timeout=cdk.Duration.seconds(timeout_s or environment.lambda_timeout_s),
            log_group=log_group,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
            environment={
                "AIPLANE_ENV": environment.name,
                "AIPLANE_RESOURCE_PREFIX": environment.resource_prefix,
                "AIPLANE_ACCOUNT_ID": cdk.Aws.ACCOUNT_ID,
                "POWERTOOLS_SERVICE_NAME": "aiplane",
                "POWERTOOLS_TRACE_DISABLED": "false" if environment.tracing else "true",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **variables,
                **(extra_environment or {}),
            },
        )
        if environment.tracing:
            # Set on the L1: the L2's `tracing` would add a policy resource per function (the X-Ray
            # actions are in the role's own policy), and the API stacks are near the 500-resource limit.
            function.node.default_child.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
        return function

    def live_alias(self, function: lambda_.Function) -> lambda_.Alias:
        """The alias API Gateway invokes: each deploy publishes a version (snapshotted with
        SnapStart) and moves the alias to it."""
        return lambda_.Alias(
            self, f"{function.node.id}-{LIVE_ALIAS}", alias_name=LIVE_ALIAS, version=function.current_version
        )

    def _placement(self, access: str) -> dict:
        """The VPC keyword arguments of a function that must reach something only a VPC reaches:
        GPU agents (the fleet VPC, in the group the agents admit) or the appproxy Redis (its VPC)."""
        uses_redis = access in FUNCTION_ACCESS and APPPROXY_REDIS_SECRET in FUNCTION_ACCESS[access].read
        calls_agents = self.fleet is not None and access in resources.AGENT_CALLER_FUNCTIONS
        if uses_redis and calls_agents:
            raise ValueError(f"{access} would need two VPCs (GPU agents and the appproxy Redis)")
        if calls_agents:
            return self.fleet.function_vpc()
        if not uses_redis:
            return {}
        if self.appproxy is None:
            raise ValueError(f"{access} uses the appproxy Redis: its stack needs the data stack's network")
        return {
            "vpc": self.appproxy.vpc,
            "vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            "security_groups": [self.appproxy.security_group],
        }

    def _role(self, logical_name: str, access: str, log_group: logs.LogGroup, *, in_vpc: bool = False) -> iam.Role:
        statements = [
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            ),
            *function_statements(self.environment, access),
        ]
        if in_vpc:
            statements.append(iam.PolicyStatement(actions=VPC_ACTIONS, resources=["*"]))
        if self.environment.tracing:
            statements.append(iam.PolicyStatement(actions=XRAY_ACTIONS, resources=["*"]))  # X-Ray takes no resource ARN
        return iam.Role(
            self,
            f"{logical_name}-role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"aiplane {logical_name}",
            inline_policies={"access": iam.PolicyDocument(statements=statements)},
        )
