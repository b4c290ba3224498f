"""Route-level permission checks for runtime resources, for any router:

    router = APIRouter(dependencies=[Depends(resource_permission("backends"))])

GET needs view, POST/PUT/PATCH need edit, DELETE needs manage on the resource (or on `server`).
Owned items (chats, files, functions, triggers, chains, hooks, telegram frontends) are checked one
by one in their modules through `aiplane.identity.ownership`.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from aiplane.api.auth import current_principal
from aiplane.identity.access import Granted, permission_for_method, require_permission


def resource_permission(resource: str) -> Callable[[Request], Granted | None]:
    """The dependency; a route that also takes it as a parameter gets what granted the check (FastAPI runs
    it once per request)."""

    def check(request: Request) -> Granted | None:
        return require_permission(current_principal(request), permission_for_method(request.method), resource)

    return check
