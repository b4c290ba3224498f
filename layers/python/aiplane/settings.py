"""Run-time settings, read once from the environment.

The same variables are set by the CDK app on every Lambda and by the local stack on its process.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache

from aiplane_shared.environments import (
    BUFFERED_ROUTE_TIMEOUT_S,
    ENVIRONMENTS,
    REQUEST_BUDGET_MARGIN_S,
    STREAMING_ROUTE_TIMEOUT_S,
    Environment,
    get_environment,
)
from aiplane_shared.resources import bucket_name, physical_name

# A buffered API route must answer inside API Gateway's integration timeout, a streaming one inside
# its function's; each budget keeps a margin for the 504 envelope to get out.
DEFAULT_REQUEST_BUDGET_S = BUFFERED_ROUTE_TIMEOUT_S - REQUEST_BUDGET_MARGIN_S
DEFAULT_STREAM_BUDGET_S = STREAMING_ROUTE_TIMEOUT_S - REQUEST_BUDGET_MARGIN_S


@dataclass(frozen=True)
class Settings:
    environment: str
    resource_prefix: str
    region: str
    account_id: str
    tracing_enabled: bool
    request_budget_s: float  # a buffered route answers 504 once this has passed
    stream_budget_s: float  # the same for a streaming route, until its response starts
    # Bodies above this travel through S3 presigned URLs: a Lambda payload is 6 MB, base64 included.
    inline_body_max_bytes: int
    # Step Functions state is limited to 256 KB: larger values are kept in S3 and passed by reference.
    state_offload_bytes: int
    # Local stack only: the EC2 tag holding the loopback host:port the harness gave an instance's agent
    # (agents there listen on loopback, not on moto's made-up private IPs). Unset: the private IP EC2 reports.
    gpu_agent_address_tag: str | None = None
    # LLM gateway failure handling (docs/runtime-gateway.md): a backend that fails `allowed_fails` times
    # within the window cools down for every container; transient failures are retried on the same backend first.
    gateway_allowed_fails: int = 3
    gateway_failure_window_s: float = 60.0
    gateway_cooldown_s: float = 15.0
    gateway_retries: int = 1
    gateway_retry_backoff_s: float = 0.05
    # LLM gateway metering (docs/runtime-gateway.md, "Virtual keys"): JSON maps of model name to
    # {input_cost_per_token, output_cost_per_token} and to {max_budget, budget_duration, tpm_limit, rpm_limit,
    # max_parallel_requests}; and how long a verified API key is trusted before it is read again.
    gateway_prices: str = "{}"
    gateway_model_limits: str = "{}"
    key_cache_s: float = 1.0
    # Semantic search (docs/runtime-files.md): the most chunks one search reads and ranks.
    search_max_chunks: int = 50_000

    def resource(self, name: str) -> str:
        """The physical name of a shared resource (table, queue, bus, secret)."""
        return physical_name(self.resource_prefix, name)

    def bucket(self, name: str) -> str:
        """The physical name of a shared bucket (global: it carries the account and region)."""
        return bucket_name(self.resource_prefix, name, self.account_id, self.region)


@cache
def get_settings() -> Settings:
    environment = os.environ.get("AIPLANE_ENV", "local")
    return Settings(
        environment=environment,
        resource_prefix=os.environ.get("AIPLANE_RESOURCE_PREFIX", f"aiplane-{environment}"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        account_id=os.environ.get("AIPLANE_ACCOUNT_ID") or ENVIRONMENTS["local"].account or "",
        tracing_enabled=os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() not in ("1", "true"),
        request_budget_s=float(os.environ.get("AIPLANE_REQUEST_BUDGET_S", DEFAULT_REQUEST_BUDGET_S)),
        stream_budget_s=float(os.environ.get("AIPLANE_STREAM_BUDGET_S", DEFAULT_STREAM_BUDGET_S)),
        gpu_agent_address_tag=os.environ.get("AIPLANE_GPU_AGENT_ADDRESS_TAG") or None,
        inline_body_max_bytes=int(os.environ.get("AIPLANE_INLINE_BODY_MAX_BYTES", 4 * 1024 * 1024)),
        state_offload_bytes=int(os.environ.get("AIPLANE_STATE_OFFLOAD_BYTES", 32 * 1024)),
        gateway_allowed_fails=int(os.environ.get("AIPLANE_GATEWAY_ALLOWED_FAILS", 3)),
        gateway_failure_window_s=float(os.environ.get("AIPLANE_GATEWAY_FAILURE_WINDOW_S", 60)),
        gateway_cooldown_s=float(os.environ.get("AIPLANE_GATEWAY_COOLDOWN_S", 15)),
        gateway_retries=int(os.environ.get("AIPLANE_GATEWAY_RETRIES", 1)),
        gateway_retry_backoff_s=float(os.environ.get("AIPLANE_GATEWAY_RETRY_BACKOFF_S", 0.05)),
        gateway_prices=os.environ.get("AIPLANE_GATEWAY_PRICES") or _json_of(environment, "gateway_prices"),
        gateway_model_limits=os.environ.get("AIPLANE_GATEWAY_MODEL_LIMITS") or _json_of(environment, "gateway_model_limits"),
        key_cache_s=float(os.environ.get("AIPLANE_KEY_CACHE_S", 1.0)),
        search_max_chunks=int(os.environ.get("AIPLANE_SEARCH_MAX_CHUNKS", 50_000)),
    )


def _json_of(environment: str, name: str) -> str:
    """A per-environment table (environments.py) as the JSON its variable would hold."""
    known = ENVIRONMENTS.get(environment)
    return json.dumps({key: dict(value) for key, value in getattr(known, name).items()}) if known else "{}"


def current_environment() -> Environment:
    """This deployment's per-environment settings (caps, throttles) from `environments.py`."""
    return get_environment(get_settings().environment)
