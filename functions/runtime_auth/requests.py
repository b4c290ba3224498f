"""The sign-up body, which is also an admin's create-user body (runtime_users). Apart from the
routes, so that the users function does not build the auth routes to get it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class CreateUserRequest(BaseModel):
    email: str | None = None
    password: str | None = None
    friendlyName: str | None = None
    allowedResources: list[dict[str, Any]] | None = None
