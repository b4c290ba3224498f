"""Create every shared resource in the embedded AWS, from the same definitions as the CDK app."""

from __future__ import annotations

import json
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from aiplane_shared import resources
from aiplane_shared.environments import ENVIRONMENTS
from aiplane_shared.families import FAMILIES, base_path
from aiplane_shared.resources import physical_name

LOCAL_AGENT_ARTIFACT_KEY = "gpu-agent/aiplane-agent.zip"


DEFAULT_LOCAL_URL = "http://127.0.0.1:8080"


@dataclass
class ProvisionedStack:
    prefix: str
    queue_urls: dict[str, str] = field(default_factory=dict)  # logical queue name (and dlq) -> URL
    rule_arns: dict[str, str] = field(default_factory=dict)


def provision(prefix: str, region: str, bootstrap: dict[str, str]) -> ProvisionedStack:
    stack = ProvisionedStack(prefix=prefix)
    dynamodb = boto3.client("dynamodb", region_name=region)
    for table in resources.TABLES:
        _create_table(dynamodb, physical_name(prefix, table.name), table)

    sqs = boto3.client("sqs", region_name=region)
    for queue in resources.QUEUES:
        stack.queue_urls.update(create_queue_with_dlq(sqs, prefix, queue))

    events = boto3.client("events", region_name=region)
    for bus in resources.EVENT_BUSES:
        events.create_event_bus(Name=physical_name(prefix, bus.name))
    for schedule in resources.SCHEDULES:
        stack.rule_arns[schedule.name] = create_schedule(events, stack, schedule)
    for rule in resources.EVENT_RULES:
        stack.rule_arns[rule.name] = create_pattern_rule(events, sqs, stack, rule)

    secretsmanager = boto3.client("secretsmanager", region_name=region)
    secret_values = {
        resources.JWT_SIGNING_SECRET.name: json.dumps({"current": "k1", "k1": secrets.token_urlsafe(48)}),
        **bootstrap,
    }
    for secret in resources.SECRETS:
        if secret in resources.PROVIDER_SECRETS:  # the operator sets the keys; until then they are empty
            secretsmanager.create_secret(
                Name=physical_name(prefix, secret.name), SecretString=json.dumps({"api_key": ""})
            )
            continue
        secretsmanager.create_secret(Name=physical_name(prefix, secret.name), SecretString=secret_values[secret.name])

    ssm = boto3.client("ssm", region_name=region)
    for family in FAMILIES:  # the local server overwrites these with its real address
        ssm.put_parameter(
            Name=resources.api_url_parameter(prefix, family),
            Type="String",
            Value=f"{DEFAULT_LOCAL_URL}{base_path(family)}",
        )

    ec2 = boto3.client("ec2", region_name=region)
    iam = boto3.client("iam", region_name=region)
    for template in resources.LAUNCH_TEMPLATES:
        create_launch_template(ec2, iam, prefix, template)

    s3 = boto3.client("s3", region_name=region)
    retention_days = ENVIRONMENTS["local"].audit_digest_retention_days
    for bucket in resources.BUCKETS:
        name = resources.bucket_name(prefix, bucket.name, ENVIRONMENTS["local"].account, region)
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bucket.object_lock)
        if bucket.versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if bucket.object_lock:
            s3.put_object_lock_configuration(
                Bucket=name,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": retention_days}},
                },
            )

    publish_agent_artifact(
        s3,
        ssm,
        prefix,
        resources.bucket_name(prefix, resources.ARTIFACT_BUCKET.name, ENVIRONMENTS["local"].account, region),
    )

    kms = boto3.client("kms", region_name=region)
    for key in resources.SIGNING_KEYS:
        key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description=key.purpose)[
            "KeyMetadata"
        ]["KeyId"]
        kms.create_alias(AliasName=resources.key_alias(prefix, key), TargetKeyId=key_id)
    return stack


def _create_table(dynamodb: Any, name: str, table: resources.Table) -> None:
    key_attributes = {resources.PARTITION_KEY, resources.SORT_KEY}
    for index in table.indexes:
        key_attributes |= {index.partition_key, index.sort_key}
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": attr, "AttributeType": "S"} for attr in sorted(key_attributes)],
        KeySchema=[
            {"AttributeName": resources.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": resources.SORT_KEY, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in table.indexes
        ],
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute}
    )


def create_queue_with_dlq(sqs: Any, prefix: str, queue: resources.Queue) -> dict[str, str]:
    suffix = ".fifo" if queue.fifo else ""
    fifo_attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if queue.fifo else {}
    dlq_url = sqs.create_queue(QueueName=physical_name(prefix, queue.dlq_name) + suffix, Attributes=fifo_attributes)[
        "QueueUrl"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=physical_name(prefix, queue.name) + suffix,
        Attributes={
            **fifo_attributes,
            "VisibilityTimeout": str(queue.visibility_timeout_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return {queue.name: queue_url, queue.dlq_name: dlq_url}


def create_schedule(events: Any, stack: ProvisionedStack, schedule: resources.Schedule) -> str:
    """The schedule's rule, without its SQS target: in moto a schedule rule on the default bus
    matches every event put there (EC2 state changes, for one) and would forward them all. The
    dispatchers fire the schedule into `schedule.target_queue` themselves; the CDK app wires the
    target in AWS."""
    return events.put_rule(
        Name=physical_name(stack.prefix, schedule.name), ScheduleExpression=schedule.schedule_expression
    )["RuleArn"]


def create_pattern_rule(events: Any, sqs: Any, stack: ProvisionedStack, rule: resources.EventPatternRule) -> str:
    rule_name = physical_name(stack.prefix, rule.name)
    bus = {"EventBusName": physical_name(stack.prefix, rule.event_bus)} if rule.event_bus else {}
    rule_arn = events.put_rule(Name=rule_name, EventPattern=json.dumps(rule.event_pattern), **bus)["RuleArn"]
    queue_url = stack.queue_urls[rule.target_queue]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_targets(Rule=rule_name, Targets=[{"Id": "queue", "Arn": queue_arn}], **bus)
    return rule_arn


def create_launch_template(ec2: Any, iam: Any, prefix: str, template: resources.LaunchTemplate) -> None:
    """The launch template with its instance profile; the image is any Linux image moto knows."""
    name = physical_name(prefix, template.name)
    iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": template.default_instance_type,
            "IamInstanceProfile": {"Name": name},
            "MetadataOptions": {"HttpTokens": "required"},
        },
    )


def publish_agent_artifact(s3: Any, ssm: Any, prefix: str, bucket: str) -> None:
    """What the CDK app's asset does in the cloud: the agent artifact in S3, its URI in SSM (the
    provisioner puts it in user data; locally the supervisor runs the agent from this checkout)."""
    from aiplane_agent import artifact

    with tempfile.TemporaryDirectory() as scratch:
        built = artifact.build(Path(scratch) / "aiplane-agent.zip")
        s3.upload_file(str(built), bucket, LOCAL_AGENT_ARTIFACT_KEY)
    ssm.put_parameter(
        Name=resources.agent_artifact_parameter(prefix),
        Type="String",
        Overwrite=True,
        Value=f"s3://{bucket}/{LOCAL_AGENT_ARTIFACT_KEY}",
    )


def publish_api_urls(prefix: str, region: str, base_url: str) -> None:
    """Record where the local server listens, as each API stack does in the cloud."""
    ssm = boto3.client("ssm", region_name=region)
    for family in FAMILIES:
        ssm.put_parameter(
            Name=resources.api_url_parameter(prefix, family),
            Type="String",
            Value=f"{base_url}{base_path(family)}",
            Overwrite=True,
        )
    publish_websocket_endpoints(prefix, region, base_url)


def publish_websocket_endpoints(prefix: str, region: str, base_url: str) -> None:
    """Where the local server takes PostToConnection, as each API stack publishes its WebSocket API's."""
    from aiplane_local.websocket_gateway import management_url

    ssm = boto3.client("ssm", region_name=region)
    for family in resources.WEBSOCKET_FAMILIES:
        ssm.put_parameter(
            Name=resources.websocket_management_parameter(prefix, family),
            Type="String",
            Value=management_url(base_url, family),
            Overwrite=True,
        )
