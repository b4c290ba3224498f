"""Per-environment settings, shared by the CDK app and the local stack."""

from __future__ import annotations

from dataclasses import dataclass


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
    # Object Lock (compliance) retention of each signed audit digest.
    audit_digest_retention_days: int = 1
    # A non-admin's live mlworker reservations may hold at most this many GPU-hours (GPUs × hours left).
    mlworker_reservation_gpu_hours_per_user: float = 16.0


ENVIRONMENTS: dict[str, Environment] = {
    "local": Environment(
        name="local", account="123456789012", region="us-east-1", resource_prefix="aiplane-local",
        lambda_memory_mb=512, lambda_timeout_s=30, log_retention_days=1,
        table_point_in_time_recovery=False, throttle_rate_limit=1000, throttle_burst_limit=2000,
        tracing=False, audit_digest_retention_days=1, mlworker_reservation_gpu_hours_per_user=16.0,
    ),
    "dev": Environment(
        name="dev", account=None, region="us-east-1", resource_prefix="aiplane-dev",
        lambda_memory_mb=512, lambda_timeout_s=30, log_retention_days=14,
        table_point_in_time_recovery=False, throttle_rate_limit=100, throttle_burst_limit=200,
        tracing=True, audit_digest_retention_days=30, mlworker_reservation_gpu_hours_per_user=16.0,
    ),
    "prod": Environment(
        name="prod", account=None, region="us-east-1", resource_prefix="aiplane-prod",
        lambda_memory_mb=1024, lambda_timeout_s=30, log_retention_days=90,
        table_point_in_time_recovery=True, throttle_rate_limit=500, throttle_burst_limit=1000,
        tracing=True, audit_digest_retention_days=400, mlworker_reservation_gpu_hours_per_user=64.0,
    ),
}

DEPLOYABLE = ("dev", "prod")


def get_environment(name: str) -> Environment:
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise ValueError(f"unknown environment {name!r}; choose one of {sorted(ENVIRONMENTS)}") from None
