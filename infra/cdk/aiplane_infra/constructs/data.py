"""State: DynamoDB tables, the buckets (artifacts; audit digests under Object Lock), the audit
signing key and the secrets, from the shared definitions."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from aiplane_infra.constructs.access import ROTATED_SECRETS
from aiplane_infra.constructs.functions import FunctionFactory, log_retention
from aiplane_shared import resources
from aiplane_shared.environments import Environment
from aiplane_shared.resources import bucket_name, physical_name

ROTATION_PERIOD = cdk.Duration.days(30)
APPPROXY_REDIS_PORT = 6379


def _removal(environment: Environment) -> cdk.RemovalPolicy:
    return cdk.RemovalPolicy.RETAIN if environment.name == "prod" else cdk.RemovalPolicy.DESTROY


class StateTables(Construct):
    def __init__(self, scope: Construct, construct_id: str, environment: Environment) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for definition in resources.TABLES:
            table = dynamodb.Table(
                self,
                definition.name,
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
                self,
                definition.name,
                bucket_name=bucket_name(
                    environment.resource_prefix, definition.name, cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION
                ),
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                encryption=s3.BucketEncryption.S3_MANAGED,
                enforce_ssl=True,
                lifecycle_rules=_lifecycle(definition),
                **(
                    _locked(environment)
                    if definition.object_lock
                    else {
                        "versioned": definition.versioned or environment.name == "prod",
                        "removal_policy": _removal(environment),
                        "auto_delete_objects": environment.name != "prod",
                    }
                ),
            )
            for definition in resources.BUCKETS
        }


def _lifecycle(definition: resources.Bucket) -> list[s3.LifecycleRule]:
    """Expiring prefixes and tags; in a bucket that keeps versions, their older versions expire
    with them and the delete markers left behind are removed."""
    versions = {"noncurrent_version_expiration": cdk.Duration.days(1)} if definition.versioned else {}
    rules = [
        s3.LifecycleRule(prefix=prefix, expiration=cdk.Duration.days(days), **versions)
        for prefix, days in definition.expiring_prefixes
    ]
    rules += [
        s3.LifecycleRule(tag_filters={key: value}, expiration=cdk.Duration.days(days), **versions)
        for key, value, days in definition.expiring_tags
    ]
    if definition.versioned:
        rules.append(s3.LifecycleRule(expired_object_delete_marker=True))
    return rules


def _locked(environment: Environment) -> dict:
    """Compliance-mode Object Lock: no one deletes or overwrites an object before its retention
    ends, so the bucket (and what it holds) outlives a stack deletion."""
    return {
        "versioned": True,
        "object_lock_enabled": True,
        "object_lock_default_retention": s3.ObjectLockRetention.compliance(
            cdk.Duration.days(environment.audit_digest_retention_days)
        ),
        "removal_policy": cdk.RemovalPolicy.RETAIN,
    }


class SigningKeys(Construct):
    """KMS asymmetric keys for signatures (audit digests), found by alias."""

    def __init__(self, scope: Construct, construct_id: str, environment: Environment) -> None:
        super().__init__(scope, construct_id)
        self.keys = {}
        for definition in resources.SIGNING_KEYS:
            key = kms.Key(
                self,
                definition.name,
                description=definition.purpose,
                key_spec=kms.KeySpec.ECC_NIST_P256,
                key_usage=kms.KeyUsage.SIGN_VERIFY,
                alias=resources.key_alias(environment.resource_prefix, definition),
                removal_policy=cdk.RemovalPolicy.RETAIN,  # old digests stay verifiable
            )
            self.keys[definition.name] = key


class SecretStore(Construct):
    """Secrets generated at deploy time; nobody ever sees them in a template."""

    def __init__(
        self, scope: Construct, construct_id: str, environment: Environment, functions: FunctionFactory
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = environment.resource_prefix
        self.secrets: dict[str, secretsmanager.Secret] = {}
        self.secrets[resources.JWT_SIGNING_SECRET.name] = secretsmanager.Secret(
            self,
            resources.JWT_SIGNING_SECRET.name,
            secret_name=physical_name(prefix, resources.JWT_SIGNING_SECRET.name),
            description=resources.JWT_SIGNING_SECRET.purpose,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template='{"current": "k1"}',
                generate_string_key="k1",
                exclude_punctuation=True,
                password_length=64,
            ),
            removal_policy=_removal(environment),
        )
        for definition in resources.PROVIDER_SECRETS:
            # The operator puts the key in; the generated field only satisfies CloudFormation.
            secretsmanager.Secret(
                self,
                definition.name,
                secret_name=physical_name(prefix, definition.name),
                description=definition.purpose,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template='{"api_key": ""}',
                    generate_string_key="placeholder",
                    exclude_punctuation=True,
                    password_length=16,
                ),
                removal_policy=_removal(environment),
            )
        for definition in resources.BOOTSTRAP_SECRETS:
            self.secrets[definition.name] = secretsmanager.Secret(
                self,
                definition.name,
                secret_name=physical_name(prefix, definition.name),
                description=definition.purpose,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    exclude_punctuation=True, password_length=40
                ),
                removal_policy=_removal(environment),
            )
        rotation = functions.make(resources.SECRET_ROTATION_FUNCTION, resources.SECRET_ROTATION_FUNCTION)
        for definition in ROTATED_SECRETS:
            self.secrets[definition.name].add_rotation_schedule(
                f"{definition.name}-rotation",
                rotation_lambda=rotation,
                automatically_after=ROTATION_PERIOD,
            )


class ApiGatewayLogging(Construct):
    """The account-wide role API Gateway writes execution logs with (one per account and region;
    the API stacks' stages turn their execution logs on)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway pushes execution logs to CloudWatch Logs",
            inline_policies={
                "logs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=[
                                "logs:CreateLogGroup",
                                "logs:CreateLogStream",
                                "logs:DescribeLogGroups",
                                "logs:DescribeLogStreams",
                                "logs:PutLogEvents",
                                "logs:GetLogEvents",
                                "logs:FilterLogEvents",
                            ],
                            resources=[
                                f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:log-group:*"
                            ],
                        )
                    ]
                )
            },
        )
        apigw.CfnAccount(self, "Account", cloud_watch_role_arn=role.role_arn)


@dataclass(frozen=True)
class FunctionNetwork:
    """Where the functions that use the appproxy Redis run (its VPC's isolated subnets)."""

    vpc: ec2.IVpc
    security_group: ec2.ISecurityGroup


class AppProxyRedis(Construct):
    """The Redis the appproxy coordinator shares with its Backend.AI workers (their event bus and
    traffic counters): ElastiCache Serverless (Valkey, TLS) in a VPC of its own, its URL in the
    `appproxy-redis` secret. The functions that use it run in that VPC's isolated subnets and reach
    DynamoDB and Secrets Manager (and X-Ray) through VPC endpoints; workers reach it by peering or
    VPN into this VPC (docs/appproxy.md)."""

    def __init__(self, scope: Construct, construct_id: str, environment: Environment) -> None:
        super().__init__(scope, construct_id)
        prefix = environment.resource_prefix
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=physical_name(prefix, "appproxy"),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
            ],
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                        logs.LogGroup(
                            self,
                            "FlowLogs",
                            retention=log_retention(environment),
                            removal_policy=cdk.RemovalPolicy.DESTROY,
                        )
                    )
                )
            },
        )
        functions = ec2.SecurityGroup(
            self,
            "FunctionsSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=True,
            description="appproxy functions (to the Redis and the VPC endpoints)",
        )
        endpoints = ec2.SecurityGroup(
            self,
            "EndpointsSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="appproxy VPC interface endpoints (HTTPS from the appproxy functions)",
        )
        endpoints.add_ingress_rule(functions, ec2.Port.tcp(443), "appproxy functions")
        self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        interface_services = {"SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER}
        if environment.tracing:
            interface_services["XRay"] = ec2.InterfaceVpcEndpointAwsService.XRAY
        for name, service in interface_services.items():
            self.vpc.add_interface_endpoint(name, service=service, security_groups=[endpoints], open=False)
        cache = ec2.SecurityGroup(
            self,
            "CacheSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="appproxy Redis: the appproxy functions (add the worker ranges)",
        )
        cache.add_ingress_rule(functions, ec2.Port.tcp(APPPROXY_REDIS_PORT), "appproxy functions")
        self.network = FunctionNetwork(self.vpc, functions)
        self.cache = elasticache.CfnServerlessCache(
            self,
            "Cache",
            engine="valkey",
            major_engine_version="8",
            serverless_cache_name=physical_name(prefix, "appproxy"),
            description="Backend.AI event bus and traffic counters shared with the appproxy workers",
            subnet_ids=[subnet.subnet_id for subnet in self.vpc.isolated_subnets],
            security_group_ids=[cache.security_group_id],
        )
        url = cdk.Fn.join("", ["rediss://", self.cache.attr_endpoint_address, ":", self.cache.attr_endpoint_port])
        self.secret = secretsmanager.Secret(
            self,
            resources.APPPROXY_REDIS_SECRET.name,
            secret_name=physical_name(prefix, resources.APPPROXY_REDIS_SECRET.name),
            description=resources.APPPROXY_REDIS_SECRET.purpose,
            # The URL is the template; the generated field only satisfies CloudFormation.
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=cdk.Fn.join("", ['{"url": "', url, '"}']),
                generate_string_key="unused",
                exclude_punctuation=True,
                password_length=16,
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
