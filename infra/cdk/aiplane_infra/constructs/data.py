"""State: DynamoDB tables, the artifact bucket and the secrets, from the shared definitions."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from aiplane_shared import resources
from aiplane_shared.environments import Environment
from aiplane_shared.resources import physical_name


def _removal(environment: Environment) -> cdk.RemovalPolicy:
    return cdk.RemovalPolicy.RETAIN if environment.name == "prod" else cdk.RemovalPolicy.DESTROY


class StateTables(Construct):
    def __init__(self, scope: Construct, construct_id: str, environment: Environment) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for definition in resources.TABLES:
            table = dynamodb.Table(
                self, definition.name,
                table_name=physical_name(environment.resource_prefix, definition.name),
                partition_key=dynamodb.Attribute(name=resources.PARTITION_KEY, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=resources.SORT_KEY, type=dynamodb.AttributeType.STRING),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                time_to_live_attribute=definition.ttl_attribute,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=environment.table_point_in_time_recovery
                ),
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                removal_policy=_removal(environment),
            )
            for index in definition.indexes:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=dynamodb.Attribute(name=index.partition_key, type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name=index.sort_key, type=dynamodb.AttributeType.STRING),
                    projection_type=dynamodb.ProjectionType.ALL,
                )
            self.tables[definition.name] = table


class ArtifactStore(Construct):
    def __init__(self, scope: Construct, construct_id: str, environment: Environment) -> None:
        super().__init__(scope, construct_id)
        self.buckets = {
            definition.name: s3.Bucket(
                self, definition.name,
                bucket_name=physical_name(environment.resource_prefix, definition.name),
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                encryption=s3.BucketEncryption.S3_MANAGED,
                enforce_ssl=True,
                versioned=environment.name == "prod",
                removal_policy=_removal(environment),
                auto_delete_objects=environment.name != "prod",
                lifecycle_rules=[s3.LifecycleRule(prefix=prefix, expiration=cdk.Duration.days(days))
                                 for prefix, days in definition.expiring_prefixes],
            )
            for definition in resources.BUCKETS
        }


class SecretStore(Construct):
    """Secrets generated at deploy time; nobody ever sees them in a template."""

    def __init__(self, scope: Construct, construct_id: str, environment: Environment) -> None:
        super().__init__(scope, construct_id)
        prefix = environment.resource_prefix
        secretsmanager.Secret(
            self, resources.JWT_SIGNING_SECRET.name,
            secret_name=physical_name(prefix, resources.JWT_SIGNING_SECRET.name),
            description=resources.JWT_SIGNING_SECRET.purpose,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template='{"current": "k1"}', generate_string_key="k1",
                exclude_punctuation=True, password_length=64,
            ),
            removal_policy=_removal(environment),
        )
        for definition in resources.PROVIDER_SECRETS:
            # The operator puts the key in; the generated field only satisfies CloudFormation.
            secretsmanager.Secret(
                self, definition.name,
                secret_name=physical_name(prefix, definition.name),
                description=definition.purpose,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template='{"api_key": ""}', generate_string_key="placeholder",
                    exclude_punctuation=True, password_length=16,
                ),
                removal_policy=_removal(environment),
            )
        for definition in resources.BOOTSTRAP_SECRETS:
            secretsmanager.Secret(
                self, definition.name,
                secret_name=physical_name(prefix, definition.name),
                description=definition.purpose,
                generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=40),
                removal_policy=_removal(environment),
            )
