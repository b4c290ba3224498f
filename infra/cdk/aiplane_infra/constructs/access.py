"""IAM for aiplane's functions: everything named with the environment's prefix, nothing else.

Scoping by name (rather than by construct reference) keeps stacks free of cross-stack exports,
so the data, async and API stacks deploy and update independently.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from aiplane_shared import resources
from aiplane_shared.environments import Environment


def prefixed_resource_statements(environment: Environment) -> list[iam.PolicyStatement]:
    prefix = environment.resource_prefix
    region, account, partition = cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID, cdk.Aws.PARTITION

    def arn(service: str, resource: str) -> str:
        return f"arn:{partition}:{service}:{region}:{account}:{resource}"

    return [
        iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                     "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
                     "dynamodb:TransactWriteItems", "dynamodb:TransactGetItems", "dynamodb:ConditionCheckItem",
                     "dynamodb:DescribeTable"],
            resources=[arn("dynamodb", f"table/{prefix}-*"), arn("dynamodb", f"table/{prefix}-*/index/*")],
        ),
        iam.PolicyStatement(
            actions=["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl",
                     "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility", "sqs:PurgeQueue"],
            resources=[arn("sqs", f"{prefix}-*")],
        ),
        iam.PolicyStatement(actions=["events:PutEvents", "events:DescribeEventBus"], resources=[arn("events", f"event-bus/{prefix}-*")]),
        iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:CreateSecret",
                     "secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret"],
            resources=[arn("secretsmanager", f"secret:{prefix}-*")],
        ),
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
            resources=[f"arn:{partition}:s3:::{prefix}-*", f"arn:{partition}:s3:::{prefix}-*/*"],
        ),
        iam.PolicyStatement(
            actions=["states:CreateStateMachine", "states:UpdateStateMachine", "states:DeleteStateMachine",
                     "states:DescribeStateMachine", "states:StartExecution", "states:StartSyncExecution",
                     "states:DescribeExecution", "states:StopExecution"],
            resources=[arn("states", f"stateMachine:{prefix}-*"), arn("states", f"execution:{prefix}-*"),
                       arn("states", f"express:{prefix}-*")],
        ),
        iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[arn("lambda", f"function:{prefix}-*")]),
        # Task chains create their state machines with this role.
        iam.PolicyStatement(actions=["iam:PassRole"],
                            resources=[f"arn:{partition}:iam::{account}:role/{prefix}-{resources.CHAIN_STATE_MACHINE_ROLE}"],
                            conditions={"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}}),
        iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[arn("ssm", f"parameter/{prefix}/*")]),
        # Audit digests: sign and verify with the environment's signing keys, reached through their aliases.
        iam.PolicyStatement(
            actions=["kms:Sign", "kms:Verify", "kms:DescribeKey"], resources=[arn("kms", "key/*")],
            conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": [
                resources.key_alias(prefix, key) for key in resources.SIGNING_KEYS]}},
        ),
    ]
