"""What the ML worker routes take from a request: the caller as an audit actor, admin checks."""

from __future__ import annotations

from fastapi import Request

from aiplane.api.auth import current_principal, source_ip
from aiplane.errors import ForbiddenError
from aiplane.identity.principal import GPU_AGENT, agent_worker_id
from aiplane.mlworker.audit import Actor


def actor_of(request: Request) -> Actor:
    return Actor(user_id=current_principal(request).id, ip_address=source_ip(request))


def require_admin(request: Request) -> None:
    if not current_principal(request).is_admin:
        raise ForbiddenError("this operation needs an admin API key")


def require_worker(request: Request, worker_id: str | None) -> None:
    """The GPU worker protocol: an admin, or a GPU contract's agent for its own worker id only."""
    principal = current_principal(request)
    if principal.is_admin:
        return
    if principal.kind != GPU_AGENT:
        raise ForbiddenError("this operation needs an admin API key or a GPU agent credential")
    if worker_id != agent_worker_id(principal.claims.get("contractId", "")):
        raise ForbiddenError("a GPU agent credential speaks only for its own contract's worker")
