"""Task chains in the template: the chain-step function, the state machines' role that may
invoke it, and the API functions' right to create Express state machines with that role."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name
from tests.infra.iam import actions_of, function_actions, function_statements


def test_chain_step_function_and_state_machine_role(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    template = templates["async"]
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": physical_name(prefix, resources.CHAIN_STEP_FUNCTION),
            "Handler": f"functions.{resources.CHAIN_STEP_FUNCTION}.handler.handler",
            "Timeout": 300,
        },
    )
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "RoleName": physical_name(prefix, resources.CHAIN_STATE_MACHINE_ROLE),
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": Match.array_with([Match.object_like({"Principal": {"Service": "states.amazonaws.com"}})])}
            ),
        },
    )
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": "lambda:InvokeFunction", "Effect": "Allow"})]
                )
            }
        },
    )


def test_api_functions_may_run_and_create_chain_state_machines(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    for function in ("runtime_chains", "runtime_chats"):
        statements = function_statements(templates["api-runtime"], physical_name(prefix, function))
        assert {"states:CreateStateMachine", "states:StartSyncExecution"} <= actions_of(statements)
        pass_role = [statement for statement in statements if statement["Action"] == "iam:PassRole"]
        assert [statement["Condition"] for statement in pass_role] == [
            {"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}}
        ]
    # the chain step runs user chains: it never deploys state machines
    step = function_actions(templates["async"], physical_name(prefix, resources.CHAIN_STEP_FUNCTION))
    assert not {action for action in step if action.startswith("states:")}


def test_builtin_chat_chain_state_machine(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    templates["async"].has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": physical_name(prefix, resources.CHAIN_STATE_MACHINE_PREFIX + "builtin-chat"),
            "StateMachineType": "EXPRESS",
            "DefinitionString": Match.string_like_regexp(physical_name(prefix, resources.CHAIN_STEP_FUNCTION)),
        },
    )


def test_offloaded_chain_state_expires_with_a_lifecycle_rule(environment_templates):
    _, templates = environment_templates
    templates["data"].has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {"Prefix": resources.CHAIN_RUNS_PREFIX, "ExpirationInDays": 1, "Status": "Enabled"}
                        )
                    ]
                )
            }
        },
    )
