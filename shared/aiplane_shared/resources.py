"""Every AWS resource aiplane uses, defined once.

The CDK app builds its constructs from these definitions and the local stack creates the same
resources in moto from them, so a name or a setting can never drift between the two.
Physical names are `<prefix>-<name>`, where the prefix comes from the environment
(`environments.py`); code finds them through `physical_name`.

The definitions are NamedTuples rather than frozen dataclasses: every Lambda imports this module
at init, and in Python 3.12 a frozen dataclass costs about ten times as much to create.
"""

from __future__ import annotations

from typing import NamedTuple

# Every table uses the same key layout: a partition/sort pair plus two overloaded GSIs, so a
# list endpoint is always a Query on a key or a GSI (never a Scan).
PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at_epoch"


class Index(NamedTuple):
    name: str
    partition_key: str
    sort_key: str


class Table(NamedTuple):
    name: str
    purpose: str
    indexes: tuple[Index, ...] = (
        Index("gsi1", "gsi1pk", "gsi1sk"),
        Index("gsi2", "gsi2pk", "gsi2sk"),
    )
    ttl_attribute: str = TTL_ATTRIBUTE


# AWS advises a queue's visibility timeout of six times its Lambda consumer's timeout, so a batch
# retried by the event source mapping never reappears while a worker still holds it.
VISIBILITY_PER_CONSUMER_TIMEOUT = 6


class Queue(NamedTuple):
    name: str
    purpose: str
    consumer_timeout_s: int = 20  # the worker function's timeout
    max_receive_count: int = 5  # after this many failed receives a message moves to the DLQ
    fifo: bool = False
    consumer: str | None = None  # the worker function (folder under functions/) fed by this queue
    explicit_visibility_s: int | None = None  # None: VISIBILITY_PER_CONSUMER_TIMEOUT × consumer_timeout_s
    batch_size: int = 10  # messages per worker invocation

    @property
    def visibility_timeout_s(self) -> int:
        if self.explicit_visibility_s is not None:
            return self.explicit_visibility_s
        return VISIBILITY_PER_CONSUMER_TIMEOUT * self.consumer_timeout_s

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


class EventBus(NamedTuple):
    name: str
    purpose: str


class Schedule(NamedTuple):
    """A scheduled rule. In the cloud it fires at `cloud_rate`; locally every `local_period_s`.

    Rules target SQS queues (not Lambda) because that works the same in moto and in AWS and gives
    every tick retries and a DLQ.
    """

    name: str
    purpose: str
    cloud_rate_minutes: int
    local_period_s: float
    target_queue: str

    @property
    def schedule_expression(self) -> str:
        unit = "minute" if self.cloud_rate_minutes == 1 else "minutes"
        return f"rate({self.cloud_rate_minutes} {unit})"


class EventPatternRule(NamedTuple):
    """A rule that forwards events matching `event_pattern` to a queue. `event_bus` None is the
    account's default bus, where AWS services (EC2 state changes, ...) publish their events."""

    name: str
    purpose: str
    event_pattern: dict
    target_queue: str
    event_bus: str | None = None


class LaunchTemplate(NamedTuple):
    """An EC2 launch template (with its instance profile); RunInstances names it and adds the
    per-instance parts (instance type, zone, market, user data)."""

    name: str
    purpose: str
    default_instance_type: str


class Secret(NamedTuple):
    name: str
    purpose: str


class Bucket(NamedTuple):
    name: str
    purpose: str
    # Object Lock in compliance mode: no one (root included) overwrites or deletes an object version
    # before its retention (`Environment.audit_digest_retention_days`) ends.
    object_lock: bool = False
    expiring_prefixes: tuple[tuple[str, int], ...] = ()  # (key prefix, days): a lifecycle rule deletes them
    expiring_tags: tuple[
        tuple[str, str, int], ...
    ] = ()  # (tag key, value, days): a lifecycle rule deletes such objects
    # Keeps versions: a completed presigned upload pins the version it checked (aiplane.data.presigned),
    # so a form posted again after completion adds a version nothing reads.
    versioned: bool = False


class SigningKey(NamedTuple):
    """A KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY), found through `alias/<prefix>-<name>`."""

    name: str
    purpose: str


# gsi3 (identity): an identity's access entries oldest first; (runtime): a function's event triggers.
# CloudFormation adds one GSI per table per update; `python -m aiplane.backfill` fills it for older items.
IDENTITY_TABLE = Table(
    "identity",
    "users, API keys, sessions, access control, rate-limit counters",
    indexes=(Index("gsi1", "gsi1pk", "gsi1sk"), Index("gsi2", "gsi2pk", "gsi2sk"), Index("gsi3", "gsi3pk", "gsi3sk")),
)
RUNTIME_TABLE = Table(
    "runtime",
    "LLM backends, pools/groups, models, providers, chains, chats, events",
    indexes=(Index("gsi1", "gsi1pk", "gsi1sk"), Index("gsi2", "gsi2pk", "gsi2sk"), Index("gsi3", "gsi3pk", "gsi3sk")),
)
APPPROXY_TABLE = Table("appproxy", "workers, slots, circuits, endpoints")
MLWORKER_TABLE = Table(
    "mlworker",
    "tasks, plugins, scheduler workers, reservations, experiments, audit chain",
    # gsi3: a user's tasks per status, so a user's task list reads a page, not every task.
    # gsi4 (sparse): the queued tasks in aged-priority order, so /v1/queue reads a page.
    indexes=(
        Index("gsi1", "gsi1pk", "gsi1sk"),
        Index("gsi2", "gsi2pk", "gsi2sk"),
        Index("gsi3", "gsi3pk", "gsi3sk"),
        Index("gsi4", "gsi4pk", "gsi4sk"),
    ),
)
GPUFARM_TABLE = Table(
    "gpufarm",
    "GPU contracts, preferences, loads, billing, guardrails, served models",
    # gsi3: the models ready now (sparse), so /stats counts what serves without reading every model.
    indexes=(Index("gsi1", "gsi1pk", "gsi1sk"), Index("gsi2", "gsi2pk", "gsi2sk"), Index("gsi3", "gsi3pk", "gsi3sk")),
)

# Live updates: who listens on which WebSocket (API Gateway connection ids), expiring with API
# Gateway's 2-hour connection limit.
WEBSOCKET_CONNECTIONS_TABLE = Table("websocket-connections", "open WebSocket connections (mlworker and gpufarm /ws)")

TABLES: tuple[Table, ...] = (
    IDENTITY_TABLE,
    RUNTIME_TABLE,
    APPPROXY_TABLE,
    MLWORKER_TABLE,
    GPUFARM_TABLE,
    WEBSOCKET_CONNECTIONS_TABLE,
)

# One pull per invocation; the worker extends its message's visibility while the pull progresses, so a
# killed worker's message comes back within minutes rather than after 6 x 15.
MODEL_DOWNLOAD_QUEUE = Queue(
    "model-downloads",
    "model pulls onto LLM backends",
    consumer_timeout_s=900,
    consumer="runtime_downloads",
    explicit_visibility_s=960,
    batch_size=1,
    max_receive_count=10,
)
GATEWAY_SYNC_QUEUE = Queue(
    "gateway-sync",
    "LLM backend reconciliation requests (schedule ticks and backend writes)",
    consumer_timeout_s=300,
    max_receive_count=3,
    consumer="runtime_sync",
)
PROVISIONING_QUEUE = Queue(
    "provisioning",
    "EC2 GPU instance provisioning requests, EC2 state changes and lease sweeps",
    consumer_timeout_s=300,
    consumer="gpufarm_provisioner",
)

# appproxy housekeeping ticks (one message per scheduled tick).
APPPROXY_WORKER_LIVENESS_QUEUE = Queue(
    "appproxy-worker-liveness",
    "marks app-proxy workers silent past the heartbeat timeout as lost",
    consumer_timeout_s=60,
    consumer="appproxy_worker_liveness",
)
APPPROXY_IDLE_CIRCUITS_QUEUE = Queue(
    "appproxy-idle-circuits",
    "collects interactive app-proxy circuits idle past the timeout",
    consumer_timeout_s=300,
    consumer="appproxy_idle_circuits",
)
# mlworker housekeeping ticks: expired task leases go back to the queue, silent workers go offline.
MLWORKER_LEASES_QUEUE = Queue(
    "mlworker-leases",
    "returns tasks whose lease expired to the queue and marks silent GPU workers offline",
    consumer_timeout_s=120,
    consumer="mlworker_leases",
)
# Audit chains (mlworker events, authentication events): each tick writes one signed digest per chain.
AUDIT_DIGESTS_QUEUE = Queue(
    "audit-digests",
    "anchors the audit chains' heads in signed digests outside DynamoDB",
    consumer_timeout_s=60,
    max_receive_count=3,
    consumer="audit_digests",
)

# Runtime events: appended events reach the trigger runner through the domain bus; expired job
# leases return to the queue on a schedule.
# One function run per message (batch 1, fanned out per trigger): the worker's 180 s cover one
# function's 120 s limit (aiplane.events.triggers.function_timeout_s), and a retry repeats no finished run.
EVENT_TRIGGERS_QUEUE = Queue(
    "event-triggers",
    "runs the functions of event triggers matching each appended event",
    consumer_timeout_s=180,
    max_receive_count=3,
    consumer="runtime_event_triggers",
    batch_size=1,
)
JOB_LEASE_EXPIRY_QUEUE = Queue(
    "job-lease-expiry",
    "returns jobs whose lease expired to the pending queue",
    consumer_timeout_s=60,
    consumer="runtime_job_leases",
)

# Live updates (task, instance, contract and model status changes) on their way to the WebSockets.
LIVE_UPDATES_QUEUE = Queue(
    "live-updates",
    "status changes to push to the WebSocket connections of their owner",
    consumer_timeout_s=30,
    max_receive_count=3,
    consumer="websocket_sender",
)
# LLM gateway spend: one message per request, settled by its worker off the request's path.
SPEND_LOG_QUEUE = Queue(
    "gateway-spend-logs",
    "LLM gateway spend logs: each request's usage and cost, settled against its budgets",
    consumer_timeout_s=60,
    max_receive_count=5,
    consumer="runtime_spend",
)

QUEUES: tuple[Queue, ...] = (
    MODEL_DOWNLOAD_QUEUE,
    GATEWAY_SYNC_QUEUE,
    PROVISIONING_QUEUE,
    APPPROXY_WORKER_LIVENESS_QUEUE,
    APPPROXY_IDLE_CIRCUITS_QUEUE,
    EVENT_TRIGGERS_QUEUE,
    JOB_LEASE_EXPIRY_QUEUE,
    MLWORKER_LEASES_QUEUE,
    AUDIT_DIGESTS_QUEUE,
    LIVE_UPDATES_QUEUE,
    SPEND_LOG_QUEUE,
)

# Presigned uploads never completed (runtime files, gpufarm models): their pending records and objects go.
UPLOAD_SWEEP_QUEUE = Queue(
    "upload-sweep",
    "removes presigned uploads past their expiry: the pending records and any uploaded object",
    consumer_timeout_s=120,
    consumer="upload_sweep",
)
QUEUES = (*QUEUES, UPLOAD_SWEEP_QUEUE)

# Domain events travel on their own bus: a schedule rule on the default bus matches every
# put_events in moto, so schedules stay on the default bus and domain events stay off it.
DOMAIN_EVENT_BUS = EventBus("events", "domain events and event triggers")
EVENT_BUSES: tuple[EventBus, ...] = (DOMAIN_EVENT_BUS,)

RUNTIME_EVENT_SOURCE = "aiplane.runtime"
RUNTIME_EVENT_DETAIL_TYPE = "runtime.event"
EVENT_TRIGGERS_RULE = EventPatternRule(
    "event-triggers",
    "appended runtime events to the event-trigger runner",
    event_pattern={"source": [RUNTIME_EVENT_SOURCE], "detail-type": [RUNTIME_EVENT_DETAIL_TYPE]},
    target_queue=EVENT_TRIGGERS_QUEUE.name,
    event_bus=DOMAIN_EVENT_BUS.name,
)

APPPROXY_WORKER_LIVENESS_SCHEDULE = Schedule(
    "appproxy-worker-liveness",
    "mark silent app-proxy workers lost",
    cloud_rate_minutes=1,
    local_period_s=10.0,
    target_queue=APPPROXY_WORKER_LIVENESS_QUEUE.name,
)
APPPROXY_IDLE_CIRCUITS_SCHEDULE = Schedule(
    "appproxy-idle-circuits",
    "collect idle app-proxy circuits",
    cloud_rate_minutes=5,
    local_period_s=60.0,
    target_queue=APPPROXY_IDLE_CIRCUITS_QUEUE.name,
)

GATEWAY_SYNC_SCHEDULE = Schedule(
    "gateway-sync-tick",
    "reconcile every LLM backend with the declared models",
    cloud_rate_minutes=1,
    local_period_s=10.0,
    target_queue=GATEWAY_SYNC_QUEUE.name,
)
GPU_LEASE_SWEEP = Schedule(
    "gpu-lease-sweep",
    "terminate (or renew) GPU contracts whose duration has run out",
    cloud_rate_minutes=5,
    local_period_s=30.0,
    target_queue=PROVISIONING_QUEUE.name,
)
# Both GPU schedules feed the provisioning queue; the provisioner tells them apart by the rule ARN
# that a Scheduled Event names in `resources`.
GPU_RECONCILE = Schedule(
    "gpu-reconcile",
    "terminate tagged GPU instances no contract tracks; fail or finish contracts whose messages were lost",
    cloud_rate_minutes=10,
    local_period_s=60.0,
    target_queue=PROVISIONING_QUEUE.name,
)

JOB_LEASE_EXPIRY_SCHEDULE = Schedule(
    "job-lease-expiry",
    "return jobs with expired leases to the pending queue",
    cloud_rate_minutes=1,
    local_period_s=5.0,
    target_queue=JOB_LEASE_EXPIRY_QUEUE.name,
)

MLWORKER_LEASES_SCHEDULE = Schedule(
    "mlworker-leases",
    "expire GPU task leases and mark silent workers offline",
    cloud_rate_minutes=1,
    local_period_s=10.0,
    target_queue=MLWORKER_LEASES_QUEUE.name,
)

AUDIT_DIGESTS_SCHEDULE = Schedule(
    "audit-digests",
    "sign and store a digest of every audit chain's heads",
    cloud_rate_minutes=15,
    local_period_s=60.0,
    target_queue=AUDIT_DIGESTS_QUEUE.name,
)

SCHEDULES: tuple[Schedule, ...] = (
    GATEWAY_SYNC_SCHEDULE,
    APPPROXY_WORKER_LIVENESS_SCHEDULE,
    APPPROXY_IDLE_CIRCUITS_SCHEDULE,
    GPU_LEASE_SWEEP,
    GPU_RECONCILE,
    JOB_LEASE_EXPIRY_SCHEDULE,
    MLWORKER_LEASES_SCHEDULE,
    AUDIT_DIGESTS_SCHEDULE,
)

UPLOAD_SWEEP_SCHEDULE = Schedule(
    "upload-sweep",
    "remove presigned uploads never completed",
    cloud_rate_minutes=15,
    local_period_s=60.0,
    target_queue=UPLOAD_SWEEP_QUEUE.name,
)
SCHEDULES = (*SCHEDULES, UPLOAD_SWEEP_SCHEDULE)
# appproxy route health checks: each tick probes the inference routes whose endpoint has a health
# check, marks them unhealthy after consecutive failures and evicts them after a timeout.
APPPROXY_ROUTE_HEALTH_QUEUE = Queue(
    "appproxy-route-health",
    "probes appproxy inference routes, marks and evicts unhealthy ones",
    consumer_timeout_s=120,
    consumer="appproxy_route_health",
)
APPPROXY_ROUTE_HEALTH_SCHEDULE = Schedule(
    "appproxy-route-health",
    "probe appproxy inference routes",
    cloud_rate_minutes=1,
    local_period_s=10.0,
    target_queue=APPPROXY_ROUTE_HEALTH_QUEUE.name,
)
QUEUES = (*QUEUES, APPPROXY_ROUTE_HEALTH_QUEUE)
SCHEDULES = (*SCHEDULES, APPPROXY_ROUTE_HEALTH_SCHEDULE)
# Telegram frontends: each tick polls the bots that are due (getUpdates, the chat chain, sendMessage).
# One tick at a time (batch 1), its frontends one after another within the worker's timeout.
TELEGRAM_POLL_QUEUE = Queue(
    "telegram-poll",
    "polls the Telegram bots of the frontends that are due and answers their messages",
    consumer_timeout_s=300,
    max_receive_count=2,
    consumer="runtime_telegram_poller",
    batch_size=1,
)
TELEGRAM_POLL_SCHEDULE = Schedule(
    "telegram-poll",
    "poll the Telegram frontends' bots",
    cloud_rate_minutes=1,
    local_period_s=5.0,
    target_queue=TELEGRAM_POLL_QUEUE.name,
)
QUEUES = (*QUEUES, TELEGRAM_POLL_QUEUE)
SCHEDULES = (*SCHEDULES, TELEGRAM_POLL_SCHEDULE)
# Runtime files: each upload or content change queues an indexing job (aiplane.files.indexing); one
# message wakes the indexer, which leases pending indexing jobs until none is left.
FILE_INDEXING_QUEUE = Queue(
    "file-indexing",
    "wakes the file indexer: lease indexing jobs, chunk and embed the files, store their chunks",
    consumer_timeout_s=300,
    max_receive_count=5,
    consumer="runtime_indexer",
    batch_size=1,
)
QUEUES = (*QUEUES, FILE_INDEXING_QUEUE)

EC2_STATE_CHANGE_RULE = EventPatternRule(
    "gpu-instance-state",
    "EC2 instance state changes keep GPU contract records current",
    event_pattern={"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    target_queue=PROVISIONING_QUEUE.name,
)
LIVE_UPDATE_SOURCE = "aiplane.live"
LIVE_UPDATE_DETAIL_TYPE = "live.update"
LIVE_UPDATES_RULE = EventPatternRule(
    "live-updates",
    "status changes (aiplane.live) to the WebSocket sender",
    event_pattern={"source": [LIVE_UPDATE_SOURCE], "detail-type": [LIVE_UPDATE_DETAIL_TYPE]},
    target_queue=LIVE_UPDATES_QUEUE.name,
    event_bus=DOMAIN_EVENT_BUS.name,
)
EVENT_RULES: tuple[EventPatternRule, ...] = (EC2_STATE_CHANGE_RULE, EVENT_TRIGGERS_RULE, LIVE_UPDATES_RULE)

GPU_LAUNCH_TEMPLATE = LaunchTemplate("gpu-agent", "GPU instances that run the aiplane GPU agent", "g5.xlarge")
LAUNCH_TEMPLATES: tuple[LaunchTemplate, ...] = (GPU_LAUNCH_TEMPLATE,)

# JSON {"current": "<kid>", "<kid>": "<key>", ...}: rotation adds a kid and moves "current".
JWT_SIGNING_SECRET = Secret("jwt-signing-key", "HS256 signing keys for user tokens")
# Bootstrap credentials, one plain-string secret each.
ADMIN_API_KEY_SECRET = Secret("admin-api-key", "the bootstrap admin API key (runtime, mlworker, gpufarm)")
APPPROXY_MANAGER_TOKEN_SECRET = Secret("appproxy-manager-token", "appproxy X-BackendAI-Token for the manager")
APPPROXY_WORKER_TOKEN_SECRET = Secret("appproxy-worker-token", "appproxy X-BackendAI-Token for workers")
# The HS256 key the coordinator shares with its AppProxy workers (their `secrets.jwt_secret`): endpoint
# API tokens and /setup permits are signed with it. Never a user-token key (JWT_SIGNING_SECRET).
APPPROXY_JWT_SECRET = Secret("appproxy-jwt-secret", "HS256 key shared by the appproxy coordinator and its workers")
BOOTSTRAP_SECRETS: tuple[Secret, ...] = (
    ADMIN_API_KEY_SECRET,
    APPPROXY_MANAGER_TOKEN_SECRET,
    APPPROXY_WORKER_TOKEN_SECRET,
    APPPROXY_JWT_SECRET,
)
# GPU marketplace API keys as JSON {"api_key": "..."}, set by the operator (an empty api_key
# disables that provider).
VASTAI_API_KEY_SECRET = Secret("vastai-api-key", "vast.ai API key (GPU marketplace provider)")
IONET_API_KEY_SECRET = Secret("ionet-api-key", "io.net API key (GPU marketplace provider)")
PROVIDER_SECRETS: tuple[Secret, ...] = (VASTAI_API_KEY_SECRET, IONET_API_KEY_SECRET)
# The URL (redis:// or rediss://) of the Redis the appproxy coordinator shares with its workers: Backend.AI's
# event bus and traffic counters. ElastiCache Serverless (Valkey) in the cloud, the embedded server locally.
APPPROXY_REDIS_SECRET = Secret("appproxy-redis", "URL of the Redis shared with the appproxy workers")
SECRETS: tuple[Secret, ...] = (JWT_SIGNING_SECRET, *BOOTSTRAP_SECRETS, *PROVIDER_SECRETS, APPPROXY_REDIS_SECRET)

CHAIN_RUNS_PREFIX = "chain-runs/"  # large chain state values, one prefix per execution (`aiplane.data.offload`)
# A presigned upload's object carries this tag until the upload is completed (`aiplane.data.presigned`):
# objects of uploads abandoned (never completed) are deleted a day later, whatever their key.
PENDING_UPLOAD_TAG = ("aiplane-upload", "pending")
ARTIFACT_BUCKET = Bucket(
    "artifacts",
    "files, uploaded models and the GPU agent package",
    expiring_prefixes=((CHAIN_RUNS_PREFIX, 1),),
    expiring_tags=((*PENDING_UPLOAD_TAG, 1),),
    versioned=True,
)
AUDIT_DIGEST_BUCKET = Bucket("audit-digests", "signed digests of the audit chains' heads", object_lock=True)
BUCKETS: tuple[Bucket, ...] = (ARTIFACT_BUCKET, AUDIT_DIGEST_BUCKET)

AUDIT_SIGNING_KEY = SigningKey("audit-digests", "signs audit chain digests (ECDSA P-256)")
SIGNING_KEYS: tuple[SigningKey, ...] = (AUDIT_SIGNING_KEY,)


def api_url_parameter(prefix: str, family: str) -> str:
    """The SSM parameter where a family's API stack publishes its base URL (GPU agents need it)."""
    return f"/{prefix}/{family}/api-url"


def websocket_management_parameter(prefix: str, family: str) -> str:
    """The SSM parameter where a family's API stack publishes its WebSocket API's management
    endpoint (`https://<api id>.execute-api.<region>.amazonaws.com/<stage>`, for PostToConnection)."""
    return f"/{prefix}/{family}/websocket-management-url"


# The functions that open connections to GPU agents (the gpufarm proxy and predict): they run in the
# fleet VPC with the one security group the agents admit (infra/cdk, FleetNetwork).
AGENT_CALLER_FUNCTIONS: frozenset[str] = frozenset({"gpufarm_gpu", "gpufarm_models"})


def agent_network_parameter(prefix: str) -> str:
    """The SSM parameter where the fleet VPC publishes its agent subnets and security group (JSON)."""
    return f"/{prefix}/gpufarm/agent-network"


def agent_artifact_parameter(prefix: str) -> str:
    """The SSM parameter where the GPU fleet publishes the S3 URI of the agent artifact it uploads."""
    return f"/{prefix}/gpufarm/agent-artifact"


def agent_credential_parameter(prefix: str, contract_id: str = "") -> str:
    """The SecureString parameter holding a GPU contract's agent credential (no contract id: the
    path prefix of all of them, for IAM). The instance role may read only its own instance's."""
    return f"/{prefix}/gpufarm/agent-credentials/{contract_id}"


def physical_name(prefix: str, name: str) -> str:
    return f"{prefix}-{name}"


def bucket_name(prefix: str, name: str, account: str, region: str) -> str:
    """S3 names are global: a bucket's name carries the account and region it lives in."""
    return f"{prefix}-{name}-{account}-{region}"


def key_alias(prefix: str, key: SigningKey) -> str:
    return f"alias/{physical_name(prefix, key.name)}"


# Task chains run as Express state machines, one per chain, named `<prefix>-chain-<digest>`.
# Each task state invokes the chain-step function; the state machines assume this role.
CHAIN_STEP_FUNCTION = "runtime_chain_step"
CHAIN_STATE_MACHINE_ROLE = "chain-state-machines"
CHAIN_STATE_MACHINE_PREFIX = "chain-"
# Rotates the secrets aiplane owns end to end (aiplane/data/rotation.py).
SECRET_ROTATION_FUNCTION = "secret_rotation"


# The functions behind each family's WebSocket API ($connect, $disconnect, $default), named
# `<family>_websocket` (one folder, the family in AIPLANE_FAMILY, as the authorizers).
WEBSOCKET_FUNCTION = "websocket"
WEBSOCKET_FAMILIES = ("mlworker", "gpufarm")
WEBSOCKET_CONNECTION_HOURS = 2  # API Gateway closes a WebSocket after 2 hours


def websocket_function_name(family: str) -> str:
    return f"{family}_{WEBSOCKET_FUNCTION}"


def chain_log_group(prefix: str) -> str:
    """Where the chains' Express state machines log (errors only: the execution data holds prompts)."""
    return f"/aws/vendedlogs/states/{prefix}-chains"
