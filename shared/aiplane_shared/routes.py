"""The route table: every contract route, the resource group (Lambda) that serves it and
who may call it.

The rows come from the contract (`contract_routes.tsv`, a copy of
`../shared/contract/endpoints.tsv`). Group and access are assigned here, in one place, so the
CDK app, the local server, the authorizers and the tests all agree.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import NamedTuple

from aiplane_shared.families import APPPROXY, FAMILIES, GPUFARM, MLWORKER, RUNTIME

# Access levels.
PUBLIC = "public"  # no credentials (the handler may still check a token carried in the request)
AUTHENTICATED = "authenticated"  # the family's credential scheme
MANAGER = "manager"  # appproxy: manager token only
WORKER = "worker"  # appproxy: worker token only
AGENT = "agent"  # gpufarm: only a GPU contract's agent credential (which no other route accepts)
GPU_WORKER = "gpu_worker"  # mlworker's GPU worker protocol: an admin API key or a GPU contract's agent credential

# Resource groups: the first path prefix that matches wins, so list longer prefixes first.
GROUP_PREFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    RUNTIME: (
        ("/ui/", "auth"),
        ("/login", "auth"),
        ("/register", "auth"),
        ("/token_refresh", "auth"),
        ("/users", "users"),
        ("/access-control", "access"),
        ("/permissions", "access"),
        ("/activity/", "activity"),
        ("/backends", "backends"),
        ("/state", "backends"),
        ("/groups", "groups"),
        ("/group-by-", "groups"),
        ("/pools", "groups"),
        ("/pool-by-", "groups"),
        ("/backend-affinity/", "groups"),
        ("/backend-associations/", "groups"),
        ("/model-affinity/", "groups"),
        ("/model-associations/", "groups"),
        ("/models", "models"),
        ("/internal/models", "models"),
        ("/v1/models", "models"),
        ("/providers/", "providers"),
        ("/queue", "queue"),
        ("/execute", "exec"),
        ("/embed", "exec"),
        ("/defaultmodel", "exec"),
        ("/supported", "exec"),
        ("/v1/chat/completions", "exec"),
        ("/v1/embeddings", "exec"),
        ("/tasks", "chains"),
        ("/taskchains", "chains"),
        ("/chains", "chains"),
        ("/openai/", "chains"),
        ("/chats", "chats"),
        ("/hooks/", "hooks"),
        ("/functions", "functions"),
        ("/event-triggers", "functions"),
        ("/events", "events"),
        ("/raw-events", "events"),
        ("/mapping", "events"),
        ("/ingest", "events"),
        ("/replay", "events"),
        ("/sync", "events"),
        ("/files", "files"),
        ("/folders", "files"),
        ("/index", "search"),
        ("/search", "search"),
        ("/keywords", "search"),
        ("/jobs/", "jobs"),
        ("/leases", "jobs"),
        ("/telegram-frontends", "telegram"),
        ("/system/", "system"),
        ("/executor/", "system"),
        ("/openapi.json", "system"),
        ("/key/", "keys"),
        ("/user/", "keys"),
        ("/spend/", "keys"),
    ),
    APPPROXY: (
        ("/api/circuit/", "circuits"),
        ("/v2/endpoints/", "endpoints"),
        ("/v2/conf", "proxy"),
        ("/v2/proxy/", "proxy"),
        ("/api/worker", "workers"),
        ("/api/slots", "workers"),
        ("/health", "health"),
        ("/openapi.json", "health"),
        ("/status", "health"),
    ),
    MLWORKER: (
        ("/v1/tasks", "tasks"),
        ("/v1/queue", "tasks"),
        ("/v1/plugins", "plugins"),
        ("/v1/scheduler/", "scheduler"),
        ("/v1/audit/", "audit"),
        ("/v1/experiments", "experiments"),
        ("/v1/jupyter/", "jupyter"),
        ("/ws", "stream"),
        ("/health", "health"),
        ("/openapi.json", "health"),
    ),
    GPUFARM: (
        ("/api/v1/auth/", "auth"),
        ("/api/v1/user/", "auth"),
        ("/api/v1/gpu/", "gpu"),
        ("/api/v1/loadbalancer/", "loadbalancer"),
        ("/api/v1/billing/", "billing"),
        ("/api/v1/guardrails/", "billing"),
        ("/api/v1/quota", "billing"),
        ("/api/v1/models", "models"),
        ("/api/v1/mcp", "agents"),
        ("/api/v1/agent", "agents"),
        ("/ws", "stream"),
        ("/health", "health"),
        ("/metrics", "health"),
        ("/stats", "health"),
        ("/openapi.json", "health"),
    ),
}

# Routes callable without the family's credentials, with the reason each is public.
PUBLIC_ROUTES: dict[tuple[str, str, str], str] = {
    (RUNTIME, "POST", "/register"): "creates the credentials",
    (RUNTIME, "POST", "/login"): "exchanges a password for a token",
    (RUNTIME, "POST", "/token_refresh"): "the token to refresh travels in the body",
    (RUNTIME, "POST", "/ui/register"): "creates the credentials",
    (RUNTIME, "POST", "/ui/login"): "exchanges a password for the session cookie",
    (RUNTIME, "POST", "/ui/token_refresh"): "the session cookie travels with the request",
    (APPPROXY, "GET", "/health"): "liveness probe",
    (APPPROXY, "GET", "/v2/proxy/{token}/{session_id}/add"): "authorized by the /v2/conf token in the path",
    (APPPROXY, "GET", "/v2/proxy/auth"): "authorized by the /v2/conf token in the body",
    # Backend.AI managers send these without a token (upstream: allow_unauthorized_configure_request);
    # with AIPLANE_APPPROXY_ALLOW_UNAUTHORIZED_CONF=false the /v2/conf handler requires the manager token.
    (APPPROXY, "POST", "/v2/conf"): "Backend.AI managers call it without a token (the handler checks when configured)",
    (APPPROXY, "GET", "/status"): "the manager's coordinator probe (api_version)",
    (MLWORKER, "GET", "/health"): "liveness probe (contract: security: [])",
    (GPUFARM, "POST", "/api/v1/auth/register"): "creates the credentials",
    (GPUFARM, "POST", "/api/v1/auth/login"): "exchanges a password for tokens",
    (GPUFARM, "GET", "/api/v1/gpu/examples"): "marked (Public) in the contract",
    (GPUFARM, "GET", "/api/v1/models/formats"): "marked (Public) in the contract",
    (GPUFARM, "GET", "/health"): "liveness probe",
    (GPUFARM, "GET", "/metrics"): "Prometheus scrape target",
    (GPUFARM, "GET", "/stats"): "public system statistics",
}

# appproxy routes whose contract precondition is the manager token; the rest need the worker token
# (POST /v2/conf is public at the gateway, see PUBLIC_ROUTES).
APPPROXY_MANAGER_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/v2/endpoints/{endpoint_id}"),
        ("DELETE", "/v2/endpoints/{endpoint_id}"),
        ("POST", "/v2/endpoints/{endpoint_id}/token"),
        ("GET", "/health/status"),
    }
)

# Routes served beyond the contract rows (family, method, path): API Gateway routes them too.
# They are left out of the OpenAPI documents, which describe exactly the contract.
EXTRA_ROUTES: tuple[tuple[str, str, str], ...] = (
    (RUNTIME, "GET", "/v1/models"),  # 001's OpenAI model list (003's GET /models is the internal format)
    (RUNTIME, "POST", "/v1/embeddings"),
    (RUNTIME, "GET", "/v1/models/{model}"),  # OpenAI's retrieve-model
    (RUNTIME, "POST", "/providers/{providerType}/configure"),  # the only way to set a provider key
    (RUNTIME, "PUT", "/users/{id}/families"),  # an administrator grants a user more API families
    # A user's own API keys: list them, revoke one.
    (GPUFARM, "GET", "/api/v1/auth/apikey"),
    (GPUFARM, "DELETE", "/api/v1/auth/apikey/{key_id}"),
    # Presigned uploads (bodies too large for Lambda): the object is in S3, write the record.
    (RUNTIME, "POST", "/files/{id}/complete"),
    (GPUFARM, "POST", "/api/v1/models/{model_id}/complete"),
    # The GPU agent's side of the gpufarm fleet (AGENT_ROUTES), and an admin's sharing and weighting of agents.
    (GPUFARM, "POST", "/api/v1/gpu/agents/register"),
    (GPUFARM, "POST", "/api/v1/gpu/agents/heartbeat"),
    (GPUFARM, "DELETE", "/api/v1/gpu/agents/{instance_id}"),
    (GPUFARM, "PUT", "/api/v1/loadbalancer/agents/{instance_id}"),
    # The uploaded models an agent serves, and its reports on them (AGENT_ROUTES).
    (GPUFARM, "POST", "/api/v1/gpu/agents/{instance_id}/models"),
    (GPUFARM, "POST", "/api/v1/gpu/agents/{instance_id}/models/{model_id}/state"),
    # mlworker GPU worker protocol: register, heartbeat, lease and report tasks and Jupyter services.
    (MLWORKER, "POST", "/v1/scheduler/workers"),
    (MLWORKER, "POST", "/v1/scheduler/workers/{workerId}/heartbeat"),
    (MLWORKER, "POST", "/v1/scheduler/workers/{workerId}/lease"),
    (MLWORKER, "POST", "/v1/scheduler/jobs/{jobId}/state"),
    (MLWORKER, "POST", "/v1/jupyter/services/{serviceId}/state"),
    # A worker's Jupyter services: those it holds, and starting ones it takes.
    (MLWORKER, "POST", "/v1/jupyter/workers/{workerId}/services"),
    # appproxy: what Backend.AI managers probe before using a coordinator ({"api_version": "v2"}).
    (APPPROXY, "GET", "/status"),
    # An mlworker reservation's owner (or an admin) releases it before it expires.
    (MLWORKER, "DELETE", "/v1/scheduler/reservations/{reservationId}"),
    # LiteLLM's key management API (virtual keys with budgets and limits) and spend logs.
    (RUNTIME, "POST", "/key/generate"),
    (RUNTIME, "POST", "/key/update"),
    (RUNTIME, "GET", "/key/info"),
    (RUNTIME, "POST", "/key/delete"),
    (RUNTIME, "POST", "/user/update"),
    (RUNTIME, "GET", "/spend/logs"),
)

# The routes a GPU agent calls with its contract's credential; that credential works nowhere else.
AGENT_ROUTES: frozenset[tuple[str, str, str]] = frozenset(
    {
        (GPUFARM, "POST", "/api/v1/gpu/agents/register"),
        (GPUFARM, "POST", "/api/v1/gpu/agents/heartbeat"),
        (GPUFARM, "DELETE", "/api/v1/gpu/agents/{instance_id}"),
        (GPUFARM, "POST", "/api/v1/gpu/agents/{instance_id}/models"),
        (GPUFARM, "POST", "/api/v1/gpu/agents/{instance_id}/models/{model_id}/state"),
    }
)

# mlworker's GPU worker protocol: an admin, or a GPU contract's agent speaking for its own worker
# (aiplane.mlworker.requests.require_worker); the agent credential works on these and AGENT_ROUTES only.
GPU_WORKER_ROUTES: frozenset[tuple[str, str, str]] = frozenset(
    {
        (MLWORKER, "POST", "/v1/scheduler/workers"),
        (MLWORKER, "POST", "/v1/scheduler/workers/{workerId}/heartbeat"),
        (MLWORKER, "POST", "/v1/scheduler/workers/{workerId}/lease"),
        (MLWORKER, "POST", "/v1/scheduler/jobs/{jobId}/state"),
        (MLWORKER, "POST", "/v1/jupyter/services/{serviceId}/state"),
        (MLWORKER, "POST", "/v1/jupyter/workers/{workerId}/services"),
    }
)

# Routes whose answer may be a Server-Sent Events stream. In the cloud they run on response-streaming
# integrations (up to 15 minutes); every other route is buffered and bound by API Gateway's 29 s.
STREAMING_ROUTES: frozenset[tuple[str, str, str]] = frozenset(
    {
        (RUNTIME, "POST", "/v1/chat/completions"),  # when the body says stream: true
        (RUNTIME, "POST", "/openai/{chainID}/v1/chat/completions"),
        (RUNTIME, "GET", "/queue/inProgress"),
        (RUNTIME, "GET", "/events/stream/{eventType}"),
        (MLWORKER, "GET", "/v1/scheduler/status/stream"),
        (MLWORKER, "GET", "/v1/scheduler/jobs/{jobId}/stream"),
        (GPUFARM, "GET", "/api/v1/mcp/sse"),
    }
)

# Every family also serves its OpenAPI document; it describes the API and holds no data.
OPENAPI_PATH = "/openapi.json"


class Route(NamedTuple):
    family: str
    method: str
    path: str
    group: str
    access: str

    @property
    def streams(self) -> bool:
        return (self.family, self.method, self.path) in STREAMING_ROUTES

    @property
    def is_public(self) -> bool:
        return self.access == PUBLIC


def group_for(family: str, path: str) -> str:
    for prefix, group in GROUP_PREFIXES[family]:
        if path == prefix or path.startswith(prefix):
            return group
    raise ValueError(f"no resource group for {family} {path}")


def access_for(family: str, method: str, path: str) -> str:
    if (family, method, path) in PUBLIC_ROUTES or path == OPENAPI_PATH:
        return PUBLIC
    if (family, method, path) in AGENT_ROUTES:
        return AGENT
    if (family, method, path) in GPU_WORKER_ROUTES:
        return GPU_WORKER
    if family == APPPROXY:
        return MANAGER if (method, path) in APPPROXY_MANAGER_ROUTES else WORKER
    return AUTHENTICATED


@cache
def contract_routes() -> tuple[Route, ...]:
    """Every row of the contract, in file order."""
    table = Path(__file__).with_name("contract_routes.tsv")
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return tuple(
        Route(
            family=row["family"],
            method=row["method"],
            path=row["path"],
            group=group_for(row["family"], row["path"]),
            access=access_for(row["family"], row["method"], row["path"]),
        )
        for row in rows
    )


def routes_of(family: str) -> tuple[Route, ...]:
    return tuple(route for route in contract_routes() if route.family == family)


def extra_routes_of(family: str) -> tuple[Route, ...]:
    return tuple(
        Route(
            family=family,
            method=method,
            path=path,
            group=group_for(family, path),
            access=access_for(family, method, path),
        )
        for extra_family, method, path in EXTRA_ROUTES
        if extra_family == family
    )


def groups_of(family: str) -> tuple[str, ...]:
    """The resource groups of a family, in a stable order (one Lambda each)."""
    seen: dict[str, None] = {}
    for _, group in GROUP_PREFIXES[family]:
        seen.setdefault(group, None)
    return tuple(seen)


def function_name(family: str, group: str) -> str:
    """The folder under functions/ and the logical name of the group's Lambda."""
    return f"{family}_{group}"


def all_function_names() -> tuple[str, ...]:
    return tuple(function_name(family, group) for family in FAMILIES for group in groups_of(family))
