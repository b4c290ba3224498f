"""Whose data a request acts on: the caller's own, or (admins only) the user it names."""

from __future__ import annotations

from aiplane.errors import ForbiddenError
from aiplane.identity.principal import Principal


def subject_of(principal: Principal, user_id: str | None) -> str:
    if not user_id or user_id == principal.id:
        return principal.id
    if not principal.is_admin:
        raise ForbiddenError("only an admin may act on another user's account", param="user_id")
    return user_id


def require_owner(principal: Principal, owner_id: str, what: str) -> None:
    if owner_id != principal.id and not principal.is_admin:
        raise ForbiddenError(f"this {what} belongs to another user")
