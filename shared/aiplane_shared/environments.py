"""Per-environment settings, shared by the CDK app and the local stack.

NamedTuples rather than frozen dataclasses: every Lambda imports this at init, and in Python 3.12
a frozen dataclass of this size costs about ten times as much to create. Change one with `_replace`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

# Address ranges an outbound allowlist can admit (aiplane/outbound.py refuses them by default).
LOOPBACK = ("127.0.0.0/8", "::1/128")
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


class Throttle(NamedTuple):
    """At most `limit` events per fixed window of `window_s` seconds."""

    limit: int
    window_s: int


class GpuSpendLimits(NamedTuple):
    """Per-user limits on GPU contracts (admins are exempt from the concurrency caps)."""

    max_instances_per_user: int  # contracts from hold to settlement (queued, launching, running)
    max_gpus_per_user: int  # GPUs of those contracts
    default_lease_hours: float  # a contract without duration_hours is held and leased for this long


class Environment(NamedTuple):
    name: str
    account: str | None  # None: resolved from the CLI's credentials at deploy time
    region: str
    resource_prefix: str
    lambda_memory_mb: int
    lambda_timeout_s: int  # API functions: API Gateway gives up on a buffered route after 29 s
    log_retention_days: int
    table_point_in_time_recovery: bool
    throttle_rate_limit: int  # API Gateway steady-state requests per second per stage
    throttle_burst_limit: int
    tracing: bool
    # Sessions and credentials (docs/identity.md).
    login_failures_per_account_and_source: Throttle  # locks out only that source for that account
    login_failures_per_account: Throttle  # the slower ceiling against guessing from many sources
    login_failures_per_source: Throttle  # one source trying many accounts
    registrations_per_source: Throttle
    api_keys_per_user: int  # active (unrevoked, unexpired) keys
    events_per_function_run: int  # events one function run may send
    # Per purpose of an outbound URL (backends, hooks, agents, marketplaces): the non-public
    # ranges it may reach. Public addresses are always admitted; link-local and cloud metadata never.
    outbound_allowlists: Mapping[str, tuple[str, ...]]
    waf: bool  # a WAF web ACL (AWS managed rules and a per-IP rate limit) in front of every API stage
    gpu_limits: GpuSpendLimits
    waf_rate_limit_per_5min: int = 2000  # requests one client IP may make in five minutes (with waf)
    alarm_api_5xx_rate: float = 0.05  # API 5xx share of requests that raises the API's alarm
    alarm_period_minutes: int = 5  # the window alarms evaluate
    alarm_email: str | None = None  # subscribed to the alarm topic `<prefix>-alarms` when set
    # Object Lock (compliance) retention of each signed audit digest.
    audit_digest_retention_days: int = 1
    # A non-admin's live mlworker reservations may hold at most this many GPU-hours (GPUs × hours left).
    mlworker_reservation_gpu_hours_per_user: float = 16.0
    # appproxy: a custom domain (and its ACM certificate in the region) mapped with an empty base path
    # to the appproxy API, so Backend.AI workers find `/api/worker` at the root (they drop any path
    # of their coordinator URL). Unset: no such domain.
    appproxy_coordinator_domain: str | None = None
    appproxy_coordinator_certificate_arn: str | None = None
    # mlworker scheduling policy (docs/mlworker.md "Scheduling").
    mlworker_default_walltime_s: int = 3600  # a task without `walltime` is stopped after this long
    mlworker_max_gpus_per_user: int = 16  # GPUs a non-admin's running tasks may hold at once
    mlworker_preemption_margin: float = 2.0  # effective-priority lead that lets a waiting task preempt
    mlworker_fairshare_half_life_h: float = 168.0  # decay of recorded GPU-seconds (Slurm's PriorityDecayHalfLife)
    mlworker_backfill: str = "easy"  # easy (EASY backfill) | greedy (first fit)
    # LLM gateway price table and per-model limits (docs/runtime-gateway.md), by model name as requested:
    # {"input_cost_per_token", "output_cost_per_token"} and {"max_budget", "budget_duration", "tpm_limit",
    # "rpm_limit", "max_parallel_requests"}. AIPLANE_GATEWAY_PRICES / AIPLANE_GATEWAY_MODEL_LIMITS override them.
    gateway_prices: Mapping[str, Mapping[str, float]] = MappingProxyType({})
    gateway_model_limits: Mapping[str, Mapping[str, float | str]] = MappingProxyType({})
    # Event triggers (docs/runtime-events.md): all the events that the trigger runs caused by one
    # appended event may send together, across every depth (events_per_function_run bounds one run).
    events_per_event_chain: int = 1000


# API Gateway's integration timeout: a buffered route may take at most 29 s, a streaming one 15 minutes
# (the Lambda maximum). The app answers 504 a margin before either (REQUEST_BUDGET_MARGIN_S).
BUFFERED_ROUTE_TIMEOUT_S = 29
STREAMING_ROUTE_TIMEOUT_S = 900
REQUEST_BUDGET_MARGIN_S = 3


ENVIRONMENTS: dict[str, Environment] = {
    "local": Environment(
        name="local",
        account="123456789012",
        region="us-east-1",
        resource_prefix="aiplane-local",
        lambda_memory_mb=512,
        lambda_timeout_s=29,
        log_retention_days=1,
        table_point_in_time_recovery=False,
        throttle_rate_limit=1000,
        throttle_burst_limit=2000,
        tracing=False,
        waf=False,
        login_failures_per_account_and_source=Throttle(5, 900),
        login_failures_per_account=Throttle(50, 3600),
        login_failures_per_source=Throttle(30, 900),
        registrations_per_source=Throttle(10_000, 3600),
        api_keys_per_user=20,
        events_per_function_run=100,
        # make run and the tests: LLM backends, hooks, agents and stand-in marketplaces on this machine.
        outbound_allowlists={
            "backends": LOOPBACK + PRIVATE,
            "hooks": LOOPBACK,
            "agents": LOOPBACK,
            "marketplaces": LOOPBACK,
            "telegram": LOOPBACK,  # a stand-in Bot API (AIPLANE_TELEGRAM_API_BASE)
            "kernels": LOOPBACK + PRIVATE,  # kernels in containers on the laptop's networks
        },
        gpu_limits=GpuSpendLimits(max_instances_per_user=8, max_gpus_per_user=16, default_lease_hours=1.0),
        audit_digest_retention_days=1,
        mlworker_reservation_gpu_hours_per_user=16.0,
    ),
    "dev": Environment(
        name="dev",
        account=None,
        region="us-east-1",
        resource_prefix="aiplane-dev",
        lambda_memory_mb=512,
        lambda_timeout_s=29,
        log_retention_days=14,
        table_point_in_time_recovery=False,
        throttle_rate_limit=100,
        throttle_burst_limit=200,
        tracing=True,
        waf=False,
        login_failures_per_account_and_source=Throttle(5, 900),
        login_failures_per_account=Throttle(50, 3600),
        login_failures_per_source=Throttle(30, 900),
        registrations_per_source=Throttle(20, 3600),
        api_keys_per_user=20,
        events_per_function_run=100,
        # LLM backends and GPU agents sit on private VPC addresses; hooks and marketplaces are public.
        outbound_allowlists={
            "backends": PRIVATE,
            "hooks": (),
            "agents": PRIVATE,
            "marketplaces": (),
            "kernels": PRIVATE,  # the kernels' VPC; narrow it to their subnets where known
        },
        gpu_limits=GpuSpendLimits(max_instances_per_user=4, max_gpus_per_user=8, default_lease_hours=1.0),
        audit_digest_retention_days=30,
        mlworker_reservation_gpu_hours_per_user=16.0,
        mlworker_default_walltime_s=4 * 3600,
        mlworker_max_gpus_per_user=16,
    ),
    "prod": Environment(
        name="prod",
        account=None,
        region="us-east-1",
        resource_prefix="aiplane-prod",
        lambda_memory_mb=1024,
        lambda_timeout_s=29,
        log_retention_days=90,
        table_point_in_time_recovery=True,
        throttle_rate_limit=500,
        throttle_burst_limit=1000,
        tracing=True,
        waf=True,
        login_failures_per_account_and_source=Throttle(5, 900),
        login_failures_per_account=Throttle(50, 3600),
        login_failures_per_source=Throttle(30, 900),
        registrations_per_source=Throttle(10, 3600),
        api_keys_per_user=10,
        events_per_function_run=100,
        # LLM backends and GPU agents sit on private VPC addresses; hooks and marketplaces are public.
        outbound_allowlists={
            "backends": PRIVATE,
            "hooks": (),
            "agents": PRIVATE,
            "marketplaces": (),
            "kernels": PRIVATE,  # the kernels' VPC; narrow it to their subnets where known
        },
        gpu_limits=GpuSpendLimits(max_instances_per_user=16, max_gpus_per_user=64, default_lease_hours=1.0),
        audit_digest_retention_days=400,
        mlworker_reservation_gpu_hours_per_user=64.0,
        mlworker_default_walltime_s=24 * 3600,
        mlworker_max_gpus_per_user=64,
    ),
}

DEPLOYABLE = ("dev", "prod")


def get_environment(name: str) -> Environment:
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise ValueError(f"unknown environment {name!r}; choose one of {sorted(ENVIRONMENTS)}") from None
