"""Task chains: the chain-step function every compiled chain invokes, the role the chains'
Express state machines assume, and the built-in chat chain's state machine (compiled from the
same definition the chats use). The API functions create one state machine per stored chain at
run time and pass the role to it."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from aiplane.chains.chats import BUILTIN_CHAT_CHAIN, BUILTIN_CHAT_KEY
from aiplane.chains.compiler import compile_chain
from aiplane.chains.model import parse_chain
from aiplane_infra.constructs.access import LOG_DELIVERY_ACTIONS
from aiplane_infra.constructs.functions import FunctionFactory, log_retention
from aiplane_shared import resources
from aiplane_shared.environments import Environment
from aiplane_shared.resources import physical_name

XRAY_STATE_MACHINE_ACTIONS = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
]
# Express workflows end after five minutes; one step may use all of it.
CHAIN_STEP_TIMEOUT_S = 300


class TaskChains(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, environment: Environment, functions: FunctionFactory
    ) -> None:
        super().__init__(scope, construct_id)
        self.step_function = functions.make(
            resources.CHAIN_STEP_FUNCTION, resources.CHAIN_STEP_FUNCTION, timeout_s=CHAIN_STEP_TIMEOUT_S
        )
        self.state_machine_role = iam.Role(
            self,
            "StateMachineRole",
            role_name=physical_name(environment.resource_prefix, resources.CHAIN_STATE_MACHINE_ROLE),
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="assumed by the Express state machines of aiplane task chains",
        )
        self.state_machine_role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[self.step_function.function_arn, f"{self.step_function.function_arn}:*"],
            )
        )
        self.state_machine_role.add_to_policy(iam.PolicyStatement(actions=LOG_DELIVERY_ACTIONS, resources=["*"]))
        self.state_machine_role.add_to_policy(iam.PolicyStatement(actions=XRAY_STATE_MACHINE_ACTIONS, resources=["*"]))
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=resources.chain_log_group(environment.resource_prefix),
            retention=log_retention(environment),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        step_function_name = physical_name(environment.resource_prefix, resources.CHAIN_STEP_FUNCTION)
        self.chat_state_machine = sfn.CfnStateMachine(
            self,
            "BuiltinChatChain",
            state_machine_name=physical_name(
                environment.resource_prefix, resources.CHAIN_STATE_MACHINE_PREFIX + BUILTIN_CHAT_KEY
            ),
            state_machine_type="EXPRESS",
            role_arn=self.state_machine_role.role_arn,
            definition_string=json.dumps(compile_chain(parse_chain(BUILTIN_CHAT_CHAIN), step_function_name)),
            tracing_configuration=sfn.CfnStateMachine.TracingConfigurationProperty(enabled=environment.tracing),
            logging_configuration=sfn.CfnStateMachine.LoggingConfigurationProperty(
                level="ERROR",
                include_execution_data=False,
                destinations=[
                    sfn.CfnStateMachine.LogDestinationProperty(
                        cloud_watch_logs_log_group=sfn.CfnStateMachine.CloudWatchLogsLogGroupProperty(
                            log_group_arn=self.log_group.log_group_arn
                        )
                    )
                ],
            ),
        )
        self.chat_state_machine.node.add_dependency(self.state_machine_role)
