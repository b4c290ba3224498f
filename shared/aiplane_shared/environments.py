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
    lambda_timeout_s: int  # API functions: API Gateway gives up on a buffered route after 29 s
    log_retention_days: int
    table_point_in_time_recovery: bool
    throttle_rate_limit: int  # API Gateway steady-state requests per second per stage
    throttle_burst_limit: int
    tracing: bool
    waf: bool  # a WAF web ACL (AWS managed rules and a per-IP rate limit) in front of every API stage
    waf_rate_limit_per_5min: int = 2000  # requests one client IP may make in five minutes (with waf)
    alarm_api_5xx_rate: float = 0.05  # API 5xx share of requests that raises the API's alarm
    alarm_period_minutes: int = 5  # the window alarms evaluate
    alarm_email: str | None = None  # subscribed to the alarm topic `<prefix>-alarms` when set


# API Gateway's integration timeout: a buffered route may take at most 29 s, a streaming one 15 minutes
# (the Lambda maximum). The app answers 504 a margin before either (REQUEST_BUDGET_MARGIN_S).
BUFFERED_ROUTE_TIMEOUT_S = 29
STREAMING_ROUTE_TIMEOUT_S = 900
REQUEST_BUDGET_MARGIN_S = 3


ENVIRONMENTS: dict[str, Environment] = {
    "local": Environment(
        name="local", account="123456789012", region="us-east-1", resource_prefix="aiplane-local",
        lambda_memory_mb=512, lambda_timeout_s=29, log_retention_days=1,
        table_point_in_time_recovery=False, throttle_rate_limit=1000, throttle_burst_limit=2000,
        tracing=False, waf=False,
    ),
    "dev": Environment(
        name="dev", account=None, region="us-east-1", resource_prefix="aiplane-dev",
        lambda_memory_mb=512, lambda_timeout_s=29, log_retention_days=14,
        table_point_in_time_recovery=False, throttle_rate_limit=100, throttle_burst_limit=200,
        tracing=True, waf=False,
    ),
    "prod": Environment(
        name="prod", account=None, region="us-east-1", resource_prefix="aiplane-prod",
        lambda_memory_mb=1024, lambda_timeout_s=29, log_retention_days=90,
        table_point_in_time_recovery=True, throttle_rate_limit=500, throttle_burst_limit=1000,
        tracing=True, waf=True,
    ),
}

DEPLOYABLE = ("dev", "prod")


def get_environment(name: str) -> Environment:
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise ValueError(f"unknown environment {name!r}; choose one of {sorted(ENVIRONMENTS)}") from None
