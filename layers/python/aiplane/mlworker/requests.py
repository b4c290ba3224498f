"""What the ML worker routes take from a request: the caller as an audit actor, admin checks."""

from __future__ import annotations

from fastapi import Request

from aiplane.api.auth import current_principal, source_ip
from aiplane.errors import ForbiddenError
from aiplane.mlworker.audit import Actor


def actor_of(request: Request) -> Actor:
    return Actor(user_id=current_principal(request).id, ip_address=source_ip(request))


def require_admin(request: Request) -> None:
    if not current_principal(request).is_admin:
        raise ForbiddenError("this operation needs an admin API key")
