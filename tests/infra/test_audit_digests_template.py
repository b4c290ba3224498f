"""The audit chains' anchor is in the templates: an Object Lock (compliance) bucket for digests, an
ECC signing key with its alias, the digest schedule feeding its consumer, and functions allowed to
sign and verify with that key only."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name
from tests.infra.iam import function_statements


def test_digest_bucket_is_locked_in_compliance_mode(environment_templates):
    env_name, templates = environment_templates
    environment = get_environment(env_name)
    templates["data"].has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "BucketName": {
                        "Fn::Join": [
                            "",
                            Match.array_with(
                                [f"{physical_name(environment.resource_prefix, resources.AUDIT_DIGEST_BUCKET.name)}-"]
                            ),
                        ]
                    },
                    "ObjectLockEnabled": True,
                    "ObjectLockConfiguration": {
                        "ObjectLockEnabled": "Enabled",
                        "Rule": {
                            "DefaultRetention": {"Mode": "COMPLIANCE", "Days": environment.audit_digest_retention_days}
                        },
                    },
                    "VersioningConfiguration": {"Status": "Enabled"},
                }
            ),
            "DeletionPolicy": "Retain",
        },
    )


def test_signing_key_is_an_ecc_key_behind_its_alias(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    data = templates["data"]
    data.has_resource(
        "AWS::KMS::Key",
        {
            "Properties": Match.object_like({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
            "DeletionPolicy": "Retain",
        },
    )
    data.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": resources.key_alias(prefix, resources.AUDIT_SIGNING_KEY)}
    )


def test_digest_schedule_feeds_its_consumer(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    messaging = templates["async"]
    schedule, queue = resources.AUDIT_DIGESTS_SCHEDULE, resources.AUDIT_DIGESTS_QUEUE
    assert schedule.target_queue == queue.name and queue.consumer == "audit_digests"
    queues = messaging.find_resources("AWS::SQS::Queue")
    (queue_id,) = [
        logical_id
        for logical_id, definition in queues.items()
        if definition["Properties"]["QueueName"] == physical_name(prefix, queue.name)
    ]
    messaging.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": physical_name(prefix, schedule.name),
            "ScheduleExpression": schedule.schedule_expression,
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}})],
        },
    )
    messaging.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": physical_name(prefix, queue.consumer),
            "Handler": "functions.audit_digests.handler.handler",
        },
    )
    messaging.has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    )


def test_functions_sign_and_verify_only_through_the_alias(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    signing = {
        "Action": ["kms:Sign", "kms:Verify", "kms:DescribeKey"],
        "Condition": {
            "ForAnyValue:StringEquals": {
                "kms:ResourceAliases": [resources.key_alias(prefix, resources.AUDIT_SIGNING_KEY)]
            }
        },
    }
    for stack, function in (("async", "audit_digests"), ("api-mlworker", "mlworker_audit")):
        statements = function_statements(templates[stack], physical_name(prefix, function))
        assert any({key: statement.get(key) for key in signing} == signing for statement in statements), function
    # Appending to a chain needs no key: the other functions of the family cannot sign.
    assert not any(
        "kms:Sign" in json.dumps(statement)
        for statement in function_statements(templates["api-mlworker"], physical_name(prefix, "mlworker_tasks"))
    )
