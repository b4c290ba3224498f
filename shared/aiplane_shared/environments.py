"""Per-environment settings, shared by the CDK app and the local stack."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Throttle:
    """At most `limit` events per fixed window of `window_s` seconds."""

    limit: int
    window_s: int


@dataclass(frozen=True)
class Environment:
    name: str
    account: str | None  # None: resolved from the CLI's credentials at deploy time
    region: str
    resource_prefix: str
    lambda_memory_mb: int
    lambda_timeout_s: int
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


ENVIRONMENTS: dict[str, Environment] = {
    "local": Environment(
        name="local", account="123456789012", region="us-east-1", resource_prefix="aiplane-local",
        lambda_memory_mb=512, lambda_timeout_s=30, log_retention_days=1,
        table_point_in_time_recovery=False, throttle_rate_limit=1000, throttle_burst_limit=2000,
        tracing=False,
        login_failures_per_account_and_source=Throttle(5, 900), login_failures_per_account=Throttle(50, 3600),
        login_failures_per_source=Throttle(30, 900), registrations_per_source=Throttle(10_000, 3600),
        api_keys_per_user=20, events_per_function_run=100,
    ),
    "dev": Environment(
        name="dev", account=None, region="us-east-1", resource_prefix="aiplane-dev",
        lambda_memory_mb=512, lambda_timeout_s=30, log_retention_days=14,
        table_point_in_time_recovery=False, throttle_rate_limit=100, throttle_burst_limit=200,
        tracing=True,
        login_failures_per_account_and_source=Throttle(5, 900), login_failures_per_account=Throttle(50, 3600),
        login_failures_per_source=Throttle(30, 900), registrations_per_source=Throttle(20, 3600),
        api_keys_per_user=20, events_per_function_run=100,
    ),
    "prod": Environment(
        name="prod", account=None, region="us-east-1", resource_prefix="aiplane-prod",
        lambda_memory_mb=1024, lambda_timeout_s=30, log_retention_days=90,
        table_point_in_time_recovery=True, throttle_rate_limit=500, throttle_burst_limit=1000,
        tracing=True,
        login_failures_per_account_and_source=Throttle(5, 900), login_failures_per_account=Throttle(50, 3600),
        login_failures_per_source=Throttle(30, 900), registrations_per_source=Throttle(10, 3600),
        api_keys_per_user=10, events_per_function_run=100,
    ),
}

DEPLOYABLE = ("dev", "prod")


def get_environment(name: str) -> Environment:
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise ValueError(f"unknown environment {name!r}; choose one of {sorted(ENVIRONMENTS)}") from None
