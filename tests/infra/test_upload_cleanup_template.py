"""Abandoned presigned uploads are cleaned: the artifacts bucket expires objects still tagged
pending, and the upload sweep runs on its schedule with a role of its own."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aiplane_shared import resources
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import physical_name
from tests.infra.iam import actions_of, function_statements


def test_the_artifacts_bucket_expires_objects_of_uploads_never_completed(environment_templates):
    _, templates = environment_templates
    key, value = resources.PENDING_UPLOAD_TAG
    artifacts = [
        bucket
        for bucket in templates["data"].find_resources("AWS::S3::Bucket").values()
        if f"-{resources.ARTIFACT_BUCKET.name}-" in str(bucket["Properties"]["BucketName"])
    ]
    (bucket,) = artifacts
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    older = {"NoncurrentVersionExpiration": {"NoncurrentDays": 1}}
    assert {"ExpirationInDays": 1, "Status": "Enabled", "TagFilters": [{"Key": key, "Value": value}], **older} in rules
    assert {"ExpirationInDays": 1, "Prefix": resources.CHAIN_RUNS_PREFIX, "Status": "Enabled", **older} in rules
    assert {"ExpiredObjectDeleteMarker": True, "Status": "Enabled"} in rules


def test_the_artifacts_bucket_keeps_versions_so_completed_uploads_pin_theirs(environment_templates):
    """A presigned form posted again after completion only adds a version that no record names."""
    _, templates = environment_templates
    (bucket,) = [
        bucket
        for bucket in templates["data"].find_resources("AWS::S3::Bucket").values()
        if f"-{resources.ARTIFACT_BUCKET.name}-" in str(bucket["Properties"]["BucketName"])
    ]
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_the_upload_sweep_runs_on_its_schedule_with_only_its_tables_and_the_bucket(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    (stack,) = [
        template
        for template in templates.values()
        if template.find_resources(
            "AWS::Lambda::Function", {"Properties": {"FunctionName": physical_name(prefix, "upload_sweep")}}
        )
    ]
    stack.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": physical_name(prefix, resources.UPLOAD_SWEEP_SCHEDULE.name),
            "ScheduleExpression": "rate(15 minutes)",
            "Targets": [Match.object_like({"Arn": Match.any_value()})],
        },
    )
    actions = actions_of(function_statements(stack, physical_name(prefix, resources.UPLOAD_SWEEP_QUEUE.consumer)))
    assert {"s3:DeleteObject", "dynamodb:Query", "dynamodb:DeleteItem"} <= actions
    # events: a swept model upload's status change goes on the domain bus (live updates).
    assert not {
        action for action in actions if action.split(":")[0] not in ("s3", "dynamodb", "sqs", "logs", "xray", "events")
    }


def test_upload_routes_may_tag_and_untag_their_objects(environment_templates):
    env_name, templates = environment_templates
    prefix = get_environment(env_name).resource_prefix
    for stack, function in (("api-runtime", "runtime_files"), ("api-gpufarm", "gpufarm_models")):
        actions = actions_of(function_statements(templates[stack], physical_name(prefix, function)))
        assert {"s3:PutObjectTagging", "s3:DeleteObjectTagging"} <= actions, function
