"""Every aiplane Lambda is made the same way: shared code asset, the two layers, the
environment's sizes, Powertools settings, its own log group."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from aiplane_infra import code
from aiplane_infra.constructs.access import prefixed_resource_statements
from aiplane_shared.environments import Environment
from aiplane_shared.resources import physical_name

_RETENTION = {1: logs.RetentionDays.ONE_DAY, 14: logs.RetentionDays.TWO_WEEKS, 90: logs.RetentionDays.THREE_MONTHS}


class FunctionFactory(Construct):
    """Holds what every function in a stack shares (layers, role) and makes functions."""

    def __init__(self, scope: Construct, construct_id: str, environment: Environment) -> None:
        super().__init__(scope, construct_id)
        self.environment = environment
        self.code = code.function_code()
        self.layers = [
            lambda_.LayerVersion(self, "Dependencies", code=code.dependencies_layer_code(),
                                 compatible_runtimes=[code.RUNTIME], description="aiplane third-party dependencies"),
            lambda_.LayerVersion(self, "Domain", code=code.domain_layer_code(),
                                 compatible_runtimes=[code.RUNTIME], description="aiplane domain layer"),
        ]
        self.role = iam.Role(
            self, "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")],
        )
        if environment.tracing:
            self.role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name("AWSXRayDaemonWriteAccess"))
        for statement in prefixed_resource_statements(environment):
            self.role.add_to_policy(statement)

    def make(self, logical_name: str, handler_module: str, *, extra_environment: dict[str, str] | None = None,
             timeout_s: int | None = None) -> lambda_.Function:
        """A function whose handler is `functions.<handler_module>.handler.handler`."""
        environment = self.environment
        name = physical_name(environment.resource_prefix, logical_name)
        log_group = logs.LogGroup(
            self, f"{logical_name}-logs", log_group_name=f"/aws/lambda/{name}",
            retention=_RETENTION[environment.log_retention_days], removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        return lambda_.Function(
            self, logical_name,
            function_name=name,
            runtime=code.RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=f"functions.{handler_module}.handler.handler",
            code=self.code,
            layers=self.layers,
            role=self.role,
            memory_size=environment.lambda_memory_mb,
            timeout=cdk.Duration.seconds(timeout_s or environment.lambda_timeout_s),
            tracing=lambda_.Tracing.ACTIVE if environment.tracing else lambda_.Tracing.DISABLED,
            log_group=log_group,
            environment={
                "AIPLANE_ENV": environment.name,
                "AIPLANE_RESOURCE_PREFIX": environment.resource_prefix,
                "POWERTOOLS_SERVICE_NAME": "aiplane",
                "POWERTOOLS_METRICS_NAMESPACE": "aiplane",
                "POWERTOOLS_TRACE_DISABLED": "false" if environment.tracing else "true",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **(extra_environment or {}),
            },
        )
