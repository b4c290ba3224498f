"""runtime auth routes: sign-up, login and token refresh, as a JSON result (M2M) or as the UI's
session cookie `auth_token` (HttpOnly, Secure, SameSite=Strict)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from aiplane.api.auth import current_principal, source_ip
from aiplane.clock import rfc3339
from aiplane.errors import ForbiddenError, UnauthenticatedError
from aiplane.identity.authenticate import AUTH_COOKIE
from aiplane.identity.principal import USER
from aiplane.identity.sessions import Session, issue_session, login, logout, refresh, register
from aiplane.identity.users import get_user
from aiplane.identity.views import runtime_view
from aiplane_shared.families import RUNTIME
from functions.runtime_auth.requests import CreateUserRequest

router = APIRouter()


class LoginRequest(BaseModel):
    email: str | None = None
    password: str | None = None


class TokenRefreshRequest(BaseModel):
    token: str | None = None


def _result(session: Session) -> dict[str, Any]:
    return {"user": runtime_view(session.user), "token": session.token, "expires_at": rfc3339(session.expires_at)}


def _set_cookie(response: Response, session: Session) -> None:
    response.set_cookie(
        AUTH_COOKIE,
        session.token,
        expires=session.expires_at,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def _register(body: CreateUserRequest, request: Request) -> Session:
    # Self-registration cannot grant itself access; an administrator grants it (POST /users or /access-control).
    if body.allowedResources:
        raise ForbiddenError("self-registration cannot grant access; ask an administrator", param="allowedResources")
    user = register(body.email, body.password, body.friendlyName, family=RUNTIME, source_ip=source_ip(request))
    return issue_session(user)


@router.post("/register", status_code=201)
def register_user(body: CreateUserRequest, request: Request) -> dict[str, Any]:
    return _result(_register(body, request))


@router.post("/login")
def login_user(body: LoginRequest, request: Request) -> dict[str, Any]:
    return _result(login(body.email, body.password, family=RUNTIME, source_ip=source_ip(request)))


@router.post("/token_refresh")
def refresh_token(body: TokenRefreshRequest, request: Request) -> dict[str, Any]:
    return _result(refresh(body.token, family=RUNTIME, source_ip=source_ip(request)))


@router.post("/ui/register", status_code=201)
def ui_register(body: CreateUserRequest, request: Request, response: Response) -> dict[str, Any]:
    session = _register(body, request)
    _set_cookie(response, session)
    return runtime_view(session.user)


@router.post("/ui/login")
def ui_login(body: LoginRequest, request: Request, response: Response) -> dict[str, Any]:
    session = login(body.email, body.password, family=RUNTIME, source_ip=source_ip(request))
    _set_cookie(response, session)
    return runtime_view(session.user)


@router.post("/ui/token_refresh")
def ui_token_refresh(request: Request, response: Response) -> str:
    token = request.cookies.get(AUTH_COOKIE)
    if not token:
        raise UnauthenticatedError("the auth_token cookie is required")
    _set_cookie(response, refresh(token, family=RUNTIME, source_ip=source_ip(request), credential="cookie"))
    return "token refreshed"


@router.post("/ui/logout")
def ui_logout(request: Request, response: Response) -> str:
    logout(
        current_principal(request),
        other_tokens=(request.cookies.get(AUTH_COOKIE),),
        family=RUNTIME,
        source_ip=source_ip(request),
    )
    response.delete_cookie(AUTH_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return "logged out"


@router.get("/ui/me")
def ui_me(request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    if principal.kind != USER:
        # The bootstrap admin (or an admin key) has no user record; describe the credential instead.
        return {
            "id": principal.id,
            "friendlyName": principal.kind,
            "email": None,
            "subject": principal.id,
            "createdAt": None,
            "updatedAt": None,
        }
    return runtime_view(get_user(principal.id))
