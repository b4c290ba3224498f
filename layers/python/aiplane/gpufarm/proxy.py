"""Forward a request to a GPU agent chosen by target or by the load-balancing strategy, among
the agents the caller may reach (`loadbalancer.agent_load`, `loadbalancer.pick_agent`).

The agent's listener answers with what it fronts on its host: the models it serves
(`/models/{model_id}/predict`), then its upstream inference server for every other path (404
without one); never an echo. A shared agent serves several users' models, so a path into
`/models/{model_id}` needs that model's owner (or an admin), checked on the path as the agent
will see it (dot segments refused)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiplane import outbound, outbound_policy
from aiplane.commerce import serving
from aiplane.errors import BadGatewayError, GatewayTimeoutError, ValidationError
from aiplane.gpufarm import loadbalancer
from aiplane.identity.principal import Principal

DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 300.0
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class ProxiedResponse:
    status_code: int
    body: bytes
    content_type: str
    instance_id: str


def forward(
    caller: Principal, method: str, target: str | None, path: str, payload: Any, timeout_s: float | None
) -> ProxiedResponse:
    method = method.upper()
    if method not in METHODS:
        raise ValidationError(f"method must be one of {', '.join(METHODS)}", param="method")
    if not path.startswith("/") or "://" in path:
        raise ValidationError("path must be an absolute path on the instance, like /v1/inference", param="path")
    _check_served_model(caller, path)
    timeout = min(timeout_s or DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S)
    agent = loadbalancer.agent_load(caller, target) if target else loadbalancer.pick_agent(caller)
    url = agent.url.rstrip("/") + path
    try:
        answer = outbound.send(
            outbound_policy.AGENTS,
            method,
            url,
            json=payload if method not in ("GET", "DELETE") else None,
            params=payload if method in ("GET", "DELETE") and isinstance(payload, dict) else None,
            timeout=timeout,
            check_status=False,  # the instance's own answer, whatever its status
        )
    except outbound.TimedOut as error:
        raise GatewayTimeoutError(
            f"GPU instance {agent.instance_id} did not answer within {timeout:g}s",
            details={"instance_id": agent.instance_id},
        ) from error
    except outbound.Unreachable as error:
        raise BadGatewayError(
            f"GPU instance {agent.instance_id} is unreachable: {error.cause_name}",
            details={"instance_id": agent.instance_id},
        ) from error
    return ProxiedResponse(
        answer.status_code, answer.content, answer.headers.get("content-type", "application/json"), agent.instance_id
    )


def _check_served_model(caller: Principal, path: str) -> None:
    # Not urlsplit: it reads a path starting with // as a host.
    segments = [segment for segment in unquote(path.split("?", 1)[0].split("#", 1)[0]).split("/") if segment]
    if any(segment in (".", "..") for segment in segments):
        raise ValidationError("path may not hold . or .. segments", param="path")
    if len(segments) > 1 and segments[0] == "models":
        serving.get_model(caller, segments[1])  # 404 for no such model, 403 for someone else's
