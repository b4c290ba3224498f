"""Run-time settings: one validated model of every variable the code reads, read once from the
environment.

The CDK app sets them on every Lambda and the local stack on its process. On Lambda the settings
are validated at import (init), so a missing or malformed variable fails the cold start with its
name instead of a request later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from aiplane.cold_start import on_lambda
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


class Settings(BaseModel):
    """Every variable the code reads, validated once (`get_settings`). Each field's alias is its
    variable; a value that does not parse fails with the variable's name."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    environment: str = Field("local", alias="AIPLANE_ENV")
    resource_prefix: str = Field("", alias="AIPLANE_RESOURCE_PREFIX")  # "" is aiplane-<environment>
    region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    account_id: str = Field(ENVIRONMENTS["local"].account or "", alias="AIPLANE_ACCOUNT_ID")
    trace_disabled: bool = Field(True, alias="POWERTOOLS_TRACE_DISABLED")
    request_budget_s: float = Field(
        DEFAULT_REQUEST_BUDGET_S, gt=0, alias="AIPLANE_REQUEST_BUDGET_S"
    )  # then a buffered route answers 504
    stream_budget_s: float = Field(
        DEFAULT_STREAM_BUDGET_S, gt=0, alias="AIPLANE_STREAM_BUDGET_S"
    )  # the same until a stream starts
    # Bodies above this travel through S3 presigned URLs: a Lambda payload is 6 MB, base64 included.
    inline_body_max_bytes: int = Field(4 * 1024 * 1024, gt=0, alias="AIPLANE_INLINE_BODY_MAX_BYTES")
    # Step Functions state is limited to 256 KB: larger values are kept in S3 and passed by reference.
    state_offload_bytes: int = Field(32 * 1024, gt=0, alias="AIPLANE_STATE_OFFLOAD_BYTES")
    # Local stack only: the EC2 tag holding the loopback host:port the harness gave an instance's agent
    # (agents there listen on loopback, not on moto's made-up private IPs). Unset: the private IP EC2 reports.
    gpu_agent_address_tag: str | None = Field(None, alias="AIPLANE_GPU_AGENT_ADDRESS_TAG")
    # LLM gateway failure handling (docs/runtime-gateway.md): a backend that fails `allowed_fails` times
    # within the window cools down for every container; transient failures are retried on the same backend first.
    gateway_allowed_fails: int = Field(3, ge=1, alias="AIPLANE_GATEWAY_ALLOWED_FAILS")
    gateway_failure_window_s: float = Field(60.0, gt=0, alias="AIPLANE_GATEWAY_FAILURE_WINDOW_S")
    gateway_cooldown_s: float = Field(15.0, ge=0, alias="AIPLANE_GATEWAY_COOLDOWN_S")
    gateway_retries: int = Field(1, ge=0, alias="AIPLANE_GATEWAY_RETRIES")
    gateway_retry_backoff_s: float = Field(0.05, ge=0, alias="AIPLANE_GATEWAY_RETRY_BACKOFF_S")
    # LLM gateway metering (docs/runtime-gateway.md, "Virtual keys"): JSON maps of model name to
    # {input_cost_per_token, output_cost_per_token} and to {max_budget, budget_duration, tpm_limit, rpm_limit,
    # max_parallel_requests} ("": the environment's tables); and how long a verified API key is trusted.
    gateway_prices: str = Field("", alias="AIPLANE_GATEWAY_PRICES")
    gateway_model_limits: str = Field("", alias="AIPLANE_GATEWAY_MODEL_LIMITS")
    key_cache_s: float = Field(1.0, ge=0, alias="AIPLANE_KEY_CACHE_S")
    # How long a gateway request's parallel slot (max_parallel_requests) is leased; a stream renews it at half
    # time, so the slot of a request whose Lambda died is taken back after this long.
    gateway_lease_s: float = Field(120.0, gt=0, alias="AIPLANE_GATEWAY_LEASE_S")
    # gpufarm marketplaces' API bases ("": the provider's own).
    vastai_api_url: str = Field("", alias="AIPLANE_VASTAI_API_URL")
    ionet_api_url: str = Field("", alias="AIPLANE_IONET_API_URL")
    # appproxy coordinator (docs/appproxy.md): a worker silent this long is lost, an idle circuit is
    # collected, an unhealthy route leaves its circuit; `/v2/conf` without the manager token (upstream's
    # `allow_unauthorized_configure_request`).
    appproxy_worker_lost_after_s: int = Field(30, gt=0, alias="AIPLANE_APPPROXY_WORKER_LOST_AFTER_S")
    appproxy_circuit_idle_timeout_s: int = Field(3600, gt=0, alias="AIPLANE_APPPROXY_CIRCUIT_IDLE_TIMEOUT_S")
    appproxy_route_evict_after_s: int = Field(300, gt=0, alias="AIPLANE_APPPROXY_ROUTE_EVICT_AFTER_S")
    appproxy_allow_unauthorized_conf: bool = Field(True, alias="AIPLANE_APPPROXY_ALLOW_UNAUTHORIZED_CONF")
    # Chains (docs/runtime-chains.md): an external OpenAI-compatible endpoint their model steps call
    # instead of the in-process gateway ("": the gateway), its key, and a stored chain that runs chats
    # ("": the built-in chat chain).
    chains_llm_base_url: str = Field("", alias="AIPLANE_CHAINS_LLM_BASE_URL")
    chains_llm_api_key: str = Field("", alias="AIPLANE_CHAINS_LLM_API_KEY")
    chat_chain_id: str = Field("", alias="AIPLANE_CHAT_CHAIN_ID")
    # An event-triggered function's time limit (capped by what one trigger-worker invocation leaves it).
    function_timeout_s: float = Field(120.0, gt=0, alias="AIPLANE_FUNCTION_TIMEOUT_S")
    # The Telegram Bot API the frontends' poller calls (aiplane.telegram.bot_api); tests point it at a stand-in.
    telegram_api_base: str = Field("https://api.telegram.org", alias="AIPLANE_TELEGRAM_API_BASE")
    # The runtime's default models ("": the built-in names in aiplane.gateway.inference).
    default_task_model: str = Field("", alias="AIPLANE_DEFAULT_TASK_MODEL")
    default_embed_model: str = Field("", alias="AIPLANE_DEFAULT_EMBED_MODEL")
    # Semantic search (docs/runtime-files.md): the most chunks one search reads and ranks.
    search_max_chunks: int = Field(50_000, gt=0, alias="AIPLANE_SEARCH_MAX_CHUNKS")

    @model_validator(mode="before")
    @classmethod
    def _deployed_needs_its_environment(cls, values: Any) -> Any:
        """On Lambda a missing variable fails the init, never a request (nor silently means `local`)."""
        if isinstance(values, Mapping) and values.get("AWS_LAMBDA_FUNCTION_NAME"):
            missing = [name for name in REQUIRED_ON_LAMBDA if not values.get(name)]
            if missing:
                raise ValueError(f"missing on Lambda: {', '.join(missing)} (the CDK app sets them)")
        return values

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        if not self.resource_prefix:
            object.__setattr__(self, "resource_prefix", f"aiplane-{self.environment}")
        for name in ("gateway_prices", "gateway_model_limits"):
            if not getattr(self, name):
                object.__setattr__(self, name, _json_of(self.environment, name))
        return self

    @property
    def tracing_enabled(self) -> bool:
        return not self.trace_disabled

    def resource(self, name: str) -> str:
        """The physical name of a shared resource (table, queue, bus, secret)."""
        return physical_name(self.resource_prefix, name)

    def bucket(self, name: str) -> str:
        """The physical name of a shared bucket (global: it carries the account and region)."""
        return bucket_name(self.resource_prefix, name, self.account_id, self.region)


# What every deployed function must be given (functions.py in the CDK app sets them).
REQUIRED_ON_LAMBDA = ("AIPLANE_ENV", "AIPLANE_RESOURCE_PREFIX", "AIPLANE_ACCOUNT_ID")
# Every variable the settings read. The CDK app sets no other of aiplane's (tests/infra checks it)
# but the entry points' own: which family an authorizer or WebSocket function serves (AIPLANE_FAMILY)
# and which group a streaming function runs (AIPLANE_FUNCTION); the local stack runs many functions
# in one process, so those are read per invocation, not cached here.
VARIABLES = frozenset(
    name
    for field in Settings.model_fields.values()
    for name in (field.validation_alias.choices if isinstance(field.validation_alias, AliasChoices) else [field.alias])
    if isinstance(name, str)
)


@cache
def get_settings() -> Settings:
    return Settings.model_validate(dict(os.environ))


def _json_of(environment: str, name: str) -> str:
    """A per-environment table (environments.py) as the JSON its variable would hold."""
    known = ENVIRONMENTS.get(environment)
    return json.dumps({key: dict(value) for key, value in getattr(known, name).items()}) if known else "{}"


def current_environment() -> Environment:
    """This deployment's per-environment settings (caps, throttles) from `environments.py`."""
    return get_environment(get_settings().environment)


if on_lambda():
    get_settings()
