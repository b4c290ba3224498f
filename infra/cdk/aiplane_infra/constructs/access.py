"""IAM for aiplane's functions: one role per function, granted what that function's code uses.

`FUNCTION_ACCESS` is the one table: per function (folder under functions/), the shared resource
definitions it reads or writes and the capabilities it needs beyond them. A new resource in
`aiplane_shared.resources` gets its permissions by naming it in the rows of the functions that
use it; `tests/infra/test_access.py` checks every row against what the code references.

Scoping by name (rather than by construct reference) keeps stacks free of cross-stack exports,
so the data, async and API stacks deploy and update independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from aiplane_shared import resources
from aiplane_shared.environments import Environment
from aiplane_shared.resources import (
    ADMIN_API_KEY_SECRET,
    APPPROXY_JWT_SECRET,
    APPPROXY_MANAGER_TOKEN_SECRET,
    APPPROXY_REDIS_SECRET,
    APPPROXY_TABLE,
    APPPROXY_WORKER_TOKEN_SECRET,
    ARTIFACT_BUCKET,
    DOMAIN_EVENT_BUS,
    GATEWAY_SYNC_QUEUE,
    GPUFARM_TABLE,
    IDENTITY_TABLE,
    IONET_API_KEY_SECRET,
    JWT_SIGNING_SECRET,
    MLWORKER_TABLE,
    MODEL_DOWNLOAD_QUEUE,
    PROVISIONING_QUEUE,
    RUNTIME_TABLE,
    VASTAI_API_KEY_SECRET,
    bucket_name,
    physical_name,
)

Resource = resources.Table | resources.Queue | resources.Secret | resources.Bucket | resources.EventBus


class Capability(str, Enum):
    """Permissions that are not one shared resource."""

    CHAINS = "chains"  # deploy and run task chains as Express state machines
    PROVIDER_KEYS_READ = "provider-keys-read"  # LLM provider API keys (`<prefix>-provider-*` secrets)
    PROVIDER_KEYS_WRITE = "provider-keys-write"
    TELEGRAM_TOKENS = "telegram-tokens"  # bot tokens (`<prefix>-telegram-*` secrets)
    TELEGRAM_TOKENS_READ = "telegram-tokens-read"  # the same, read only (the bot poller)
    EC2_READ = "ec2-read"  # the GPU catalog, spot prices, instance state
    EC2_LAUNCH = "ec2-launch"  # RunInstances from the launch template (the provisioner only)
    EC2_TERMINATE = "ec2-terminate"  # only instances tagged with this environment
    AGENT_CREDENTIALS = (
        "agent-credentials"  # the contracts' GPU agent credentials in SSM (aiplane.gpufarm.agent_credentials)
    )
    API_URL = "api-url"  # the API base URLs published in SSM
    ROTATION = "rotation"  # rotate the rotating secrets
    AUDIT_SIGNING = "audit-signing"  # sign and verify audit digests with the signing keys (by alias)
    WEBSOCKET_CONNECTIONS = (
        "websocket-connections"  # PostToConnection on the family WebSocket APIs (aiplane.live.sender)
    )


@dataclass(frozen=True)
class Access:
    read: tuple[Resource, ...] = ()
    write: tuple[Resource, ...] = ()  # write includes read
    capabilities: frozenset[Capability] = frozenset()


C = Capability
AUTH_SECRETS = (JWT_SIGNING_SECRET, ADMIN_API_KEY_SECRET, APPPROXY_MANAGER_TOKEN_SECRET, APPPROXY_WORKER_TOKEN_SECRET)
GPU_MARKET_SECRETS = (VASTAI_API_KEY_SECRET, IONET_API_KEY_SECRET)
GATEWAY_QUEUES = (GATEWAY_SYNC_QUEUE, MODEL_DOWNLOAD_QUEUE)


def _api(*write: Resource, read: tuple[Resource, ...] = (), capabilities: tuple[Capability, ...] = ()) -> Access:
    """An API group: the in-app credential check (identity, auth secrets) plus its own resources."""
    return Access(read=(*AUTH_SECRETS, *read), write=(IDENTITY_TABLE, *write), capabilities=frozenset(capabilities))


def _gateway_api(*write: Resource, capabilities: tuple[Capability, ...] = ()) -> Access:
    """An API group built on the LLM gateway: the runtime table, its queues and the provider keys."""
    return _api(RUNTIME_TABLE, *GATEWAY_QUEUES, *write, capabilities=(C.PROVIDER_KEYS_READ, *capabilities))


def _worker(*write: Resource, read: tuple[Resource, ...] = (), capabilities: tuple[Capability, ...] = ()) -> Access:
    return Access(read=(IDENTITY_TABLE, *read), write=write, capabilities=frozenset(capabilities))


# Status changes of tasks, GPU contracts, agents and models are published on the domain bus for the
# owner's WebSockets (aiplane.live.updates): the groups that change them put events there.
FUNCTION_ACCESS: dict[str, Access] = {
    # The authorizer only establishes who calls: it reads identity and the credentials.
    "authorizer": Access(read=(IDENTITY_TABLE, *AUTH_SECRETS)),
    "runtime_auth": _api(),
    "runtime_users": _api(),
    # Item grants on files and folders answer with their fileDetails (the files tree, read only).
    "runtime_access": _api(read=(RUNTIME_TABLE, ARTIFACT_BUCKET)),
    "runtime_activity": _api(RUNTIME_TABLE),
    "runtime_backends": _gateway_api(),
    "runtime_groups": _gateway_api(),
    "runtime_models": _gateway_api(),
    "runtime_providers": _gateway_api(capabilities=(C.PROVIDER_KEYS_WRITE,)),
    "runtime_queue": _gateway_api(),
    "runtime_exec": _gateway_api(resources.SPEND_LOG_QUEUE),
    # Chains keep large state values in the artifacts bucket (aiplane.data.offload, chain-runs/); their
    # model calls are metered like direct ones (spend logs).
    "runtime_chains": _gateway_api(ARTIFACT_BUCKET, resources.SPEND_LOG_QUEUE, capabilities=(C.CHAINS,)),
    "runtime_chats": _gateway_api(ARTIFACT_BUCKET, resources.SPEND_LOG_QUEUE, capabilities=(C.CHAINS,)),
    "runtime_hooks": _api(RUNTIME_TABLE),
    "runtime_functions": _api(RUNTIME_TABLE),
    "runtime_events": _api(RUNTIME_TABLE, DOMAIN_EVENT_BUS),
    # Each upload or content change queues an indexing job and wakes the indexer.
    "runtime_files": _api(RUNTIME_TABLE, ARTIFACT_BUCKET, resources.FILE_INDEXING_QUEUE),
    "runtime_search": _gateway_api(ARTIFACT_BUCKET),
    "runtime_jobs": _api(RUNTIME_TABLE),
    "runtime_telegram": _api(RUNTIME_TABLE, capabilities=(C.TELEGRAM_TOKENS,)),
    # GET /system/services describes every declared resource.
    "runtime_system": _api(
        RUNTIME_TABLE, read=(*resources.TABLES, *resources.QUEUES, *resources.BUCKETS, *resources.EVENT_BUSES)
    ),
    # Circuit events go to the workers' Redis (its URL: appproxy-redis; these functions run in its VPC).
    "appproxy_circuits": _api(APPPROXY_TABLE, read=(APPPROXY_REDIS_SECRET,)),
    # Endpoint tokens and /setup permits are signed with the secret shared with the workers.
    "appproxy_endpoints": _api(APPPROXY_TABLE, read=(APPPROXY_JWT_SECRET, APPPROXY_REDIS_SECRET)),
    "appproxy_proxy": _api(APPPROXY_TABLE, read=(APPPROXY_JWT_SECRET, APPPROXY_REDIS_SECRET)),
    "appproxy_workers": _api(APPPROXY_TABLE, read=(APPPROXY_REDIS_SECRET,)),
    "appproxy_health": _api(APPPROXY_TABLE),
    "mlworker_tasks": _api(
        MLWORKER_TABLE, DOMAIN_EVENT_BUS, read=(ARTIFACT_BUCKET,)
    ),  # presigns reads of task logs (task_io)
    "mlworker_plugins": _api(MLWORKER_TABLE, DOMAIN_EVENT_BUS),
    # Presigns the workers' log uploads and dataset downloads (aiplane.mlworker.task_io).
    "mlworker_scheduler": _api(MLWORKER_TABLE, ARTIFACT_BUCKET, DOMAIN_EVENT_BUS),
    # chain-root anchors on demand: a signed digest in the Object Lock bucket.
    "mlworker_audit": _api(MLWORKER_TABLE, resources.AUDIT_DIGEST_BUCKET, capabilities=(C.AUDIT_SIGNING,)),
    "mlworker_experiments": _api(MLWORKER_TABLE),
    "mlworker_jupyter": _api(MLWORKER_TABLE, DOMAIN_EVENT_BUS),
    "mlworker_stream": _api(),
    "mlworker_health": _api(),
    # The account export includes the user's access entries with their fileDetails (files tree, read only).
    "gpufarm_auth": _api(GPUFARM_TABLE, read=(RUNTIME_TABLE, ARTIFACT_BUCKET)),
    # POST queues a contract for the provisioner; DELETE terminates. Only the provisioner launches.
    # Agents fetch the models they serve through presigned GETs of the artifacts (aiplane.gpufarm.model_serving).
    "gpufarm_gpu": _api(
        GPUFARM_TABLE,
        PROVISIONING_QUEUE,
        DOMAIN_EVENT_BUS,
        read=(*GPU_MARKET_SECRETS, ARTIFACT_BUCKET),
        capabilities=(C.EC2_READ, C.EC2_TERMINATE, C.AGENT_CREDENTIALS),
    ),
    # Reads contracts (aiplane.gpufarm.contract_states), not their lifecycle: no credentials, no queue.
    "gpufarm_loadbalancer": _api(GPUFARM_TABLE, DOMAIN_EVENT_BUS, read=GPU_MARKET_SECRETS, capabilities=(C.EC2_READ,)),
    "gpufarm_billing": _api(GPUFARM_TABLE),
    "gpufarm_models": _api(GPUFARM_TABLE, ARTIFACT_BUCKET, DOMAIN_EVENT_BUS),
    "gpufarm_agents": _api(GPUFARM_TABLE, ARTIFACT_BUCKET, DOMAIN_EVENT_BUS),
    "gpufarm_stream": _api(GPUFARM_TABLE),  # its requests count in the gpufarm request count (aiplane.request_counts)
    "gpufarm_health": _api(GPUFARM_TABLE),
    # Workers: each touches its own queue (through its event source) and tables.
    "runtime_downloads": _worker(RUNTIME_TABLE, *GATEWAY_QUEUES),
    "runtime_sync": _worker(RUNTIME_TABLE, *GATEWAY_QUEUES, capabilities=(C.PROVIDER_KEYS_READ,)),
    # The chain step runs user chains: models through the gateway, hooks over HTTP; nothing else.
    "runtime_chain_step": _worker(
        RUNTIME_TABLE, *GATEWAY_QUEUES, ARTIFACT_BUCKET, resources.SPEND_LOG_QUEUE, capabilities=(C.PROVIDER_KEYS_READ,)
    ),
    # It fans an event with several triggers out on its own queue, one message per trigger.
    "runtime_event_triggers": _worker(
        RUNTIME_TABLE,
        *GATEWAY_QUEUES,
        DOMAIN_EVENT_BUS,
        ARTIFACT_BUCKET,
        resources.EVENT_TRIGGERS_QUEUE,
        resources.SPEND_LOG_QUEUE,
        capabilities=(C.PROVIDER_KEYS_READ, C.CHAINS),
    ),
    "runtime_job_leases": _worker(RUNTIME_TABLE, resources.FILE_INDEXING_QUEUE),  # wakes the indexer for returned jobs
    # Leases indexing jobs, reads the files and embeds their chunks through the gateway.
    "runtime_indexer": _worker(
        RUNTIME_TABLE, *GATEWAY_QUEUES, read=(ARTIFACT_BUCKET,), capabilities=(C.PROVIDER_KEYS_READ,)
    ),
    # LLM gateway metering: virtual keys and spend logs (identity table), the spend-log worker.
    "runtime_keys": _api(),
    "runtime_spend": _worker(IDENTITY_TABLE, resources.SPEND_LOG_QUEUE),
    # Both remove (and move) circuits, telling the workers on their Redis.
    "appproxy_worker_liveness": _worker(APPPROXY_TABLE, read=(APPPROXY_REDIS_SECRET,)),
    "appproxy_idle_circuits": _worker(APPPROXY_TABLE, read=(APPPROXY_REDIS_SECRET,)),
    # Probes kernels (outbound policy `backends`) and tells the workers of route changes.
    "appproxy_route_health": _worker(APPPROXY_TABLE, read=(APPPROXY_REDIS_SECRET,)),
    "mlworker_leases": _worker(MLWORKER_TABLE, DOMAIN_EVENT_BUS),
    # Anchors both audit chains (mlworker events, authentication events) on its schedule.
    "audit_digests": _worker(
        MLWORKER_TABLE, IDENTITY_TABLE, resources.AUDIT_DIGEST_BUCKET, capabilities=(C.AUDIT_SIGNING,)
    ),
    "gpufarm_provisioner": _worker(
        GPUFARM_TABLE,
        PROVISIONING_QUEUE,
        DOMAIN_EVENT_BUS,
        read=GPU_MARKET_SECRETS,
        capabilities=(C.EC2_READ, C.EC2_LAUNCH, C.EC2_TERMINATE, C.AGENT_CREDENTIALS, C.API_URL),
    ),
    # Live updates: each family's WebSocket API function ($connect authenticates, the connection is
    # recorded) and the sender that posts status changes to the connections.
    resources.WEBSOCKET_FUNCTION: _api(resources.WEBSOCKET_CONNECTIONS_TABLE),
    "websocket_sender": _worker(
        resources.WEBSOCKET_CONNECTIONS_TABLE, capabilities=(C.WEBSOCKET_CONNECTIONS, C.API_URL)
    ),
    # Presigned uploads past their expiry: runtime files' and gpufarm models' pending records and objects.
    "upload_sweep": _worker(RUNTIME_TABLE, GPUFARM_TABLE, ARTIFACT_BUCKET, DOMAIN_EVENT_BUS),
    # Telegram bots: reads their tokens, runs the frontends' chat chains (state values offloaded to the bucket).
    "runtime_telegram_poller": _worker(
        RUNTIME_TABLE,
        *GATEWAY_QUEUES,
        resources.SPEND_LOG_QUEUE,
        read=(ARTIFACT_BUCKET,),
        capabilities=(C.TELEGRAM_TOKENS_READ, C.CHAINS),
    ),
    # Rotates the JWT signing key and the admin API key (see functions/secret_rotation).
    resources.SECRET_ROTATION_FUNCTION: Access(capabilities=frozenset({C.ROTATION})),
}

# Secrets rotated by the rotation function: a new JWT kid (old ones keep verifying) and a new admin key.
ROTATED_SECRETS: tuple[resources.Secret, ...] = (JWT_SIGNING_SECRET, ADMIN_API_KEY_SECRET)

# Transactions are authorized item by item (there is no Transact* IAM action).
_TABLE_READ = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
]
_TABLE_WRITE = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]
_ACTIONS: dict[type, tuple[list[str], list[str]]] = {  # kind -> (read, write)
    resources.Table: (_TABLE_READ, _TABLE_WRITE),
    resources.Queue: (["sqs:GetQueueUrl", "sqs:GetQueueAttributes"], ["sqs:SendMessage"]),
    resources.Secret: (
        ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        ["secretsmanager:PutSecretValue"],
    ),
    # Tagging: presigned uploads are tagged pending until completed (resources.PENDING_UPLOAD_TAG).
    # Versions: completed uploads pin theirs, and deletes remove every version (aiplane.data.presigned).
    resources.Bucket: (
        ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions"],
        [
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:PutObjectTagging",
            "s3:DeleteObjectTagging",
            "s3:DeleteObjectVersionTagging",
        ],
    ),
    resources.EventBus: (["events:DescribeEventBus"], ["events:PutEvents"]),
}


def _arn(service: str, resource: str, *, account: bool = True) -> str:
    return f"arn:{cdk.Aws.PARTITION}:{service}:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID if account else ''}:{resource}"


def resource_arns(prefix: str, definition: Resource, *, dead_letters: bool = True) -> list[str]:
    name = physical_name(prefix, definition.name)
    if isinstance(definition, resources.Table):
        return [_arn("dynamodb", f"table/{name}"), _arn("dynamodb", f"table/{name}/index/*")]
    if isinstance(definition, resources.Queue):
        suffix = ".fifo" if definition.fifo else ""
        return [_arn("sqs", name + suffix)] + (
            [_arn("sqs", physical_name(prefix, definition.dlq_name) + suffix)] if dead_letters else []
        )
    if isinstance(definition, resources.Secret):
        return [_arn("secretsmanager", f"secret:{name}-*")]  # Secrets Manager appends a random suffix
    if isinstance(definition, resources.Bucket):
        bucket = bucket_name(prefix, definition.name, cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION)
        return [f"arn:{cdk.Aws.PARTITION}:s3:::{bucket}", f"arn:{cdk.Aws.PARTITION}:s3:::{bucket}/*"]
    return [_arn("events", f"event-bus/{name}")]


def function_statements(environment: Environment, function: str) -> list[iam.PolicyStatement]:
    """What one function's role allows: its row of FUNCTION_ACCESS, as policy statements."""
    access = FUNCTION_ACCESS[function]
    prefix = environment.resource_prefix
    statements = []
    for definition in dict.fromkeys((*access.read, *access.write)):
        read, write = _ACTIONS[type(definition)]
        statements.append(iam.PolicyStatement(actions=read, resources=resource_arns(prefix, definition)))
        if definition in access.write:  # a queue's DLQ is only ever looked at
            statements.append(
                iam.PolicyStatement(actions=write, resources=resource_arns(prefix, definition, dead_letters=False))
            )
    for capability in sorted(access.capabilities):
        statements.extend(capability_statements(environment, capability))
    return statements


def capability_statements(environment: Environment, capability: Capability) -> list[iam.PolicyStatement]:
    from aiplane_infra.constructs.gpu_fleet import gpu_fleet_statements  # the fleet owns its EC2 rules

    prefix = environment.resource_prefix
    if capability is C.CHAINS:
        return [
            iam.PolicyStatement(
                actions=[
                    "states:CreateStateMachine",
                    "states:UpdateStateMachine",
                    "states:DeleteStateMachine",
                    "states:DescribeStateMachine",
                    "states:StartSyncExecution",
                    "states:TagResource",
                ],
                resources=[
                    _arn("states", f"stateMachine:{prefix}-{resources.CHAIN_STATE_MACHINE_PREFIX}*"),
                    _arn("states", f"express:{prefix}-{resources.CHAIN_STATE_MACHINE_PREFIX}*"),
                ],
            ),
            # Inline runs collect the inline machines a killed process left (the list takes no resource ARN).
            iam.PolicyStatement(actions=["states:ListStateMachines"], resources=["*"]),
            # Task chains create their state machines with this role.
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/{prefix}-{resources.CHAIN_STATE_MACHINE_ROLE}"
                ],
                conditions={"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}},
            ),
            # A state machine created with logging sets up a log delivery (these take no resource ARN).
            iam.PolicyStatement(actions=LOG_DELIVERY_ACTIONS, resources=["*"]),
        ]
    if capability in (C.PROVIDER_KEYS_READ, C.PROVIDER_KEYS_WRITE, C.TELEGRAM_TOKENS, C.TELEGRAM_TOKENS_READ):
        pattern = "telegram-*" if capability in (C.TELEGRAM_TOKENS, C.TELEGRAM_TOKENS_READ) else "provider-*"
        actions = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        if capability not in (C.PROVIDER_KEYS_READ, C.TELEGRAM_TOKENS_READ):
            actions += ["secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret"]
        return [iam.PolicyStatement(actions=actions, resources=[_arn("secretsmanager", f"secret:{prefix}-{pattern}")])]
    if capability is C.API_URL:
        return [iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[_arn("ssm", f"parameter/{prefix}/*")])]
    if capability is C.ROTATION:
        arns = [arn for secret in ROTATED_SECRETS for arn in resource_arns(prefix, secret)]
        return [
            iam.PolicyStatement(
                actions=[
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                resources=arns,
            ),
            iam.PolicyStatement(
                actions=["secretsmanager:GetRandomPassword"], resources=["*"]
            ),  # no resource-level form
        ]
    if capability is C.WEBSOCKET_CONNECTIONS:  # the API ids live in the API stacks: by stage
        return [
            iam.PolicyStatement(
                actions=["execute-api:ManageConnections"],
                resources=[_arn("execute-api", f"*/{environment.name}/POST/@connections/*")],
            )
        ]
    if capability is C.AUDIT_SIGNING:
        return [
            iam.PolicyStatement(
                actions=["kms:Sign", "kms:Verify", "kms:DescribeKey"],
                resources=[_arn("kms", "key/*")],
                conditions={
                    "ForAnyValue:StringEquals": {
                        "kms:ResourceAliases": [resources.key_alias(prefix, key) for key in resources.SIGNING_KEYS]
                    }
                },
            )
        ]
    return gpu_fleet_statements(environment, capability)


# What a caller (and the state machine's role) needs to log an Express state machine to CloudWatch Logs.
LOG_DELIVERY_ACTIONS = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
]
