"""gpufarm auth routes: register, login (access + refresh token), API keys (create; beyond the
contract: list and revoke one's own), account export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

import aiplane.commerce.export  # noqa: F401  (registers the billing and quota sections of the export)
from aiplane.api.auth import current_principal, source_ip
from aiplane.clock import rfc3339
from aiplane.errors import ForbiddenError, ValidationError
from aiplane.identity.api_keys import create_owned_key, keys_of, revoke_owned_key
from aiplane.identity.audit import SUCCESS, record_auth_event
from aiplane.identity.export import export_account
from aiplane.identity.principal import USER, Principal
from aiplane.identity.sessions import login, register
from aiplane.identity.users import get_user
from aiplane.identity.views import gpufarm_view, key_view
from aiplane.settings import current_environment
from aiplane_shared.families import GPUFARM

router = APIRouter()


class RegisterRequest(BaseModel):
    email: str | None = None
    password: str | None = None
    name: str | None = None


class LoginRequest(BaseModel):
    email: str | None = None
    password: str | None = None


class ApiKeyRequest(BaseModel):
    name: str | None = None
    expires_at: datetime | None = None


@router.post("/api/v1/auth/register", status_code=201)
def register_user(body: RegisterRequest, request: Request) -> dict[str, Any]:
    user = register(body.email, body.password, body.name, family=GPUFARM, source_ip=source_ip(request))
    return {"user": gpufarm_view(user)}


@router.post("/api/v1/auth/login")
def login_user(body: LoginRequest, request: Request) -> dict[str, Any]:
    session = login(body.email, body.password, family=GPUFARM, source_ip=source_ip(request), with_refresh=True)
    expires_in = int((session.expires_at - datetime.now(UTC)).total_seconds())
    return {
        "user": {"id": session.user.user_id, "email": session.user.email},
        "tokens": {"access_token": session.token, "refresh_token": session.refresh_token, "expires_in": expires_in},
    }


def _key_owner(request: Request) -> Principal:
    principal = current_principal(request)
    if principal.kind != USER:
        raise ForbiddenError("API keys belong to a user account; sign in as a user")
    return principal


@router.post("/api/v1/auth/apikey", status_code=201)
def create_api_key(body: ApiKeyRequest, request: Request) -> dict[str, Any]:
    principal = _key_owner(request)
    name = (body.name or "").strip()
    if not name:
        raise ValidationError("name is required", param="name")
    expires_at = body.expires_at
    if expires_at is not None:
        expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
        if expires_at <= datetime.now(UTC):
            raise ValidationError("expires_at must be in the future", param="expires_at")
    issued = create_owned_key(principal.id, name, expires_at=expires_at, limit=current_environment().api_keys_per_user)
    record_auth_event(
        "api_key_create",
        SUCCESS,
        family=GPUFARM,
        user_id=principal.id,
        source_ip=source_ip(request),
        credential=principal.credential,
        key_prefix=issued.record.prefix,
    )
    return {
        "api_key": issued.api_key,
        "message": "Save this API key securely. It will not be shown again.",
        "created_at": rfc3339(issued.record.created_at),
        "expires_at": rfc3339(expires_at) if expires_at else None,
    }


@router.get("/api/v1/auth/apikey", include_in_schema=False)
def list_api_keys(request: Request) -> dict[str, Any]:
    return {"api_keys": [key_view(key) for key in keys_of(_key_owner(request).id)]}


@router.delete("/api/v1/auth/apikey/{key_id}", include_in_schema=False)
def revoke_api_key(key_id: str, request: Request) -> dict[str, Any]:
    principal = _key_owner(request)
    record = revoke_owned_key(principal.id, key_id)
    record_auth_event(
        "api_key_revoke",
        SUCCESS,
        family=GPUFARM,
        user_id=principal.id,
        source_ip=source_ip(request),
        credential=principal.credential,
        key_prefix=record.prefix,
    )
    return key_view(record)


@router.get("/api/v1/user/export")
def export_caller(request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    return export_account(principal.id, get_user(principal.id) if principal.kind == USER else None)
