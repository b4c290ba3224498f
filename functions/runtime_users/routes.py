"""runtime users routes: view on `users` to read, edit to create and update, manage to delete.
Anyone may read and update their own account."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from aiplane.api.auth import current_principal
from aiplane.errors import ValidationError
from aiplane.identity import access
from aiplane.identity.principal import USER, Principal
from aiplane.identity.users import (
    create_user,
    delete_user,
    get_user,
    list_users,
    set_families,
    update_user,
)
from aiplane.identity.views import runtime_view
from aiplane_shared.families import RUNTIME
from functions.runtime_auth.requests import CreateUserRequest

router = APIRouter()
USERS = "users"


class UpdateUserRequest(BaseModel):
    email: str | None = None
    friendlyName: str | None = None
    password: str | None = None  # in the contract's schema, but passwords are not changed here


class FamiliesRequest(BaseModel):
    families: list[str]


def _require(principal: Principal, needed: str, user_id: str | None = None) -> None:
    if user_id is not None and principal.kind == USER and principal.id == user_id and needed != access.MANAGE:
        return
    access.require_permission(principal, needed, USERS)


def _grants(principal: Principal, allowed: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """`allowedResources` as (resource, resourceType, permission), validated before anything is written;
    granting access on a resource needs manage on it."""
    grants: list[tuple[str, str, str]] = []
    for index, item in enumerate(allowed):
        resource, resource_type, permission = item.get("name"), item.get("resourceType"), item.get("permission")
        if not isinstance(resource, str) or not resource or not isinstance(resource_type, str) or not resource_type:
            raise ValidationError(
                "each allowedResources item needs name and resourceType", param=f"allowedResources.{index}"
            )
        if permission not in access.LEVEL:
            raise ValidationError(
                f"permission must be one of {', '.join(access.PERMISSIONS)}",
                param=f"allowedResources.{index}.permission",
            )
        if any((resource, resource_type) == granted[:2] for granted in grants):
            raise ValidationError("allowedResources names a resource twice", param=f"allowedResources.{index}")
        access.require_permission(principal, access.MANAGE, resource)
        grants.append((resource, resource_type, permission))
    return grants


@router.get("/users")
def list_all(request: Request, limit: str | None = None, cursor: str | None = None) -> list[dict[str, Any]]:
    _require(current_principal(request), access.VIEW)
    return [runtime_view(user) for user in list_users(limit=limit, cursor=cursor)]


@router.post("/users", status_code=201)
def create(body: CreateUserRequest, request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    _require(principal, access.EDIT)
    grants = _grants(principal, body.allowedResources or [])
    user = create_user(body.email, body.password, body.friendlyName, families=[RUNTIME])
    for resource, resource_type, permission in grants:
        access.create_entry(user.user_id, resource, resource_type, permission)
    return runtime_view(user)


@router.get("/users/{id}")
def read(id: str, request: Request) -> dict[str, Any]:
    _require(current_principal(request), access.VIEW, id)
    return runtime_view(get_user(id))


@router.put("/users/{id}")
def update(id: str, body: UpdateUserRequest, request: Request) -> dict[str, Any]:
    _require(current_principal(request), access.EDIT, id)
    return runtime_view(update_user(id, email=body.email, friendly_name=body.friendlyName))


@router.put("/users/{id}/families", include_in_schema=False)
def grant_families(id: str, body: FamiliesRequest, request: Request) -> dict[str, Any]:
    """Beyond the contract: which API families the user may use. Administrators only, as it
    widens what an account reaches."""
    access.require_permission(current_principal(request), access.MANAGE, access.SERVER)
    user = set_families(id, body.families)
    return {"id": user.user_id, "families": sorted(user.families or ())}


@router.delete("/users/{id}")
def delete(id: str, request: Request) -> str:
    _require(current_principal(request), access.MANAGE)
    delete_user(id)
    return "deleted"
