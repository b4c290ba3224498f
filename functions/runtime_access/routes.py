"""runtime access-control routes. Administering access needs manage on the entry's resource
(or on `server`; an item's owner manages it); anyone may read their own entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from aiplane.api.auth import current_principal
from aiplane.errors import ValidationError
from aiplane.identity import access, access_entries, ownership
from aiplane.identity.models import AccessEntryRecord
from aiplane.identity.principal import USER, Principal
from aiplane.identity.users import find_user
from aiplane.identity.views import entry_view

router = APIRouter()


class AccessEntryRequest(BaseModel):
    """The contract's accessservice_AccessEntryRequest; id and timestamps are the server's."""

    id: str | None = None
    identity: str | None = None
    resource: str | None = None
    resourceType: str | None = None
    permission: str | None = None
    createdAt: datetime | None = None
    updatedAt: datetime | None = None
    withUserDetails: bool | None = None
    identityDetails: dict[str, Any] | None = None
    fileDetails: dict[str, Any] | None = None


def _view(entry: AccessEntryRecord, expand_user: bool) -> dict[str, Any]:
    user = find_user(entry.identity) if expand_user else None
    return entry_view(entry, access_entries.file_details(entry.resource), expand_user=expand_user, user=user)


def _own(principal: Principal, identity: str) -> bool:
    return principal.kind == USER and principal.id == identity


def _readable(principal: Principal, entry: AccessEntryRecord) -> None:
    if not _own(principal, entry.identity):
        ownership.require_on_resource(principal, access.MANAGE, entry.resource)


@router.get("/access-control")
def list_entries(
    request: Request,
    identity: str | None = None,
    expand: str | None = None,
    after: str | None = Query(None, alias="from"),
    limit: str | None = None,
) -> list[dict[str, Any]]:
    principal = current_principal(request)
    if not (identity and _own(principal, identity)):
        access.require_permission(principal, access.MANAGE)
    entries = access.list_entries(identity=identity, after=after, limit=limit)
    return [_view(entry, expand == "user") for entry in entries]


@router.post("/access-control", status_code=201)
def create_entry(body: AccessEntryRequest, request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    resource, resource_type = access_entries.entry_target(body.resource, body.resourceType, body.fileDetails)
    if resource:
        ownership.require_on_resource(principal, access.MANAGE, resource)
    entry = access.create_entry(body.identity, resource, resource_type, body.permission)
    return _view(entry, bool(body.withUserDetails))


@router.get("/access-control/{id}")
def read_entry(id: str, request: Request, expand: str | None = None) -> dict[str, Any]:
    entry = access.get_entry(id)
    _readable(current_principal(request), entry)
    return _view(entry, expand == "user")


@router.put("/access-control/{id}")
def update_entry(id: str, body: AccessEntryRequest, request: Request) -> dict[str, Any]:
    entry = access.get_entry(id)  # the path id wins over the body's
    ownership.require_on_resource(current_principal(request), access.MANAGE, entry.resource)
    for field, current in (
        ("identity", entry.identity),
        ("resource", entry.resource),
        ("resourceType", entry.resource_type),
    ):
        if getattr(body, field) not in (None, current):
            raise ValidationError(f"{field} cannot change; delete the entry and create a new one", param=field)
    entry = access.update_entry(id, permission=body.permission)
    return _view(entry, bool(body.withUserDetails))


@router.delete("/access-control/{id}")
def delete_entry(id: str, request: Request) -> str:
    entry = access.get_entry(id)
    ownership.require_on_resource(current_principal(request), access.MANAGE, entry.resource)
    access.delete_entry(entry)
    return "deleted"


@router.get("/permissions")
def permissions() -> list[str]:
    return list(access.PERMISSIONS)
