"""The auth path for HTTP: one FastAPI dependency per family.

It reads the access level of the matched route from the route table, takes the principal the
API Gateway authorizer already established (same code, see `aiplane.identity.authenticate`) or
authenticates the request itself, then checks the route's access level.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from aiplane.errors import UnauthenticatedError
from aiplane.identity.authenticate import Credentials, authenticate, require_access, require_family
from aiplane.identity.principal import USER, Principal
from aiplane.identity.rate_limits import limit_request_rate
from aiplane_shared.routes import PUBLIC, access_for


def _authorizer_principal(request: Request) -> Principal | None:
    # Only API Gateway can fill requestContext.authorizer, after our authorizer Lambda ran.
    event = request.scope.get("aws.event") or {}
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    return Principal.from_context(context) if context.get("principalId") and context.get("kind") else None


def family_auth_dependency(family: str) -> Callable[[Request], None]:
    def authorize(request: Request) -> None:
        route = request.scope.get("route")
        template = getattr(route, "path_format", request.url.path)
        access = access_for(family, request.method, template)
        if access == PUBLIC:
            return
        principal = _authorizer_principal(request)
        # The authorizer's answer is cached for minutes; issued keys and user tokens can be revoked
        # (or their user deleted) at any moment, so only the bootstrap credentials are taken as is.
        if principal is None or principal.kind == USER or "keyId" in principal.claims:
            principal = authenticate(family, Credentials.from_headers(request.headers), source_ip=source_ip(request))
        require_access(principal, access)
        require_family(family, principal)
        limit_request_rate(family, principal)
        request.state.principal = principal

    return authorize


def source_ip(request: Request) -> str | None:
    """The caller's address (on Lambda, Mangum fills it from API Gateway's sourceIp)."""
    return request.client.host if request.client else None


def current_principal(request: Request) -> Principal:
    """For handlers: the authenticated caller of a non-public route."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise UnauthenticatedError("authentication required")
    return principal
