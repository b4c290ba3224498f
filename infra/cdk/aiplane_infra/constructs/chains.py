"""Task chains: the chain-step function every compiled chain invokes, the role the chains'
Express state machines assume, and the built-in chat chain's state machine (compiled from the
same definition the chats use). The API functions create one state machine per stored chain at
run time and pass the role to it."""

from __future__ import annotations

import json

from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from aiplane.chains.chats import BUILTIN_CHAT_CHAIN, BUILTIN_CHAT_KEY
from aiplane.chains.compiler import compile_chain
from aiplane.chains.model import parse_chain
from aiplane_infra.constructs.functions import FunctionFactory
from aiplane_shared import resources
from aiplane_shared.environments import Environment
from aiplane_shared.resources import physical_name

# Express workflows end after five minutes; one step may use all of it.
CHAIN_STEP_TIMEOUT_S = 300


class TaskChains(Construct):
    def __init__(self, scope: Construct, construct_id: str, environment: Environment, functions: FunctionFactory) -> None:
        super().__init__(scope, construct_id)
        self.step_function = functions.make(resources.CHAIN_STEP_FUNCTION, resources.CHAIN_STEP_FUNCTION,
                                            timeout_s=CHAIN_STEP_TIMEOUT_S)
        self.state_machine_role = iam.Role(
            self, "StateMachineRole",
            role_name=physical_name(environment.resource_prefix, resources.CHAIN_STATE_MACHINE_ROLE),
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="assumed by the Express state machines of aiplane task chains",
        )
        self.state_machine_role.add_to_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"],
            resources=[self.step_function.function_arn, f"{self.step_function.function_arn}:*"],
        ))
        step_function_name = physical_name(environment.resource_prefix, resources.CHAIN_STEP_FUNCTION)
        self.chat_state_machine = sfn.CfnStateMachine(
            self, "BuiltinChatChain",
            state_machine_name=physical_name(environment.resource_prefix, resources.CHAIN_STATE_MACHINE_PREFIX + BUILTIN_CHAT_KEY),
            state_machine_type="EXPRESS",
            role_arn=self.state_machine_role.role_arn,
            definition_string=json.dumps(compile_chain(parse_chain(BUILTIN_CHAT_CHAIN), step_function_name)),
        )
        self.chat_state_machine.node.add_dependency(self.state_machine_role)
