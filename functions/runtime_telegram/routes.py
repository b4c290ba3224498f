"""runtime telegram routes: Telegram frontends, the bot token kept in Secrets Manager and always
answered masked. View on `telegram` to read, edit to create and update, manage to delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from aiplane.activity.tracker import tracked
from aiplane.api.auth import current_principal
from aiplane.api.permissions import resource_permission
from aiplane.telegram import frontends

router = APIRouter(dependencies=[Depends(tracked("telegram")), Depends(resource_permission("telegram"))])


class FrontendRequest(BaseModel):
    userId: str | None = None
    description: str | None = None
    botToken: str | None = None
    chatChain: str | None = None
    syncInterval: int | None = None
    lastOffset: int | None = None
    status: str | None = None


@router.get("/telegram-frontends")
def list_all(request: Request, limit: str | None = None, cursor: str | None = None) -> list[dict[str, Any]]:
    records = frontends.list_frontends(limit=limit, cursor=cursor, principal=current_principal(request))
    return [frontends.view(record) for record in records]


@router.post("/telegram-frontends", status_code=201)
def create(body: FrontendRequest, request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    record = frontends.create_frontend(
        user_id=(body.userId or "").strip() or principal.id,
        bot_token=body.botToken,
        chat_chain=body.chatChain,
        description=body.description,
        sync_interval=body.syncInterval,
        last_offset=body.lastOffset,
        principal=principal,
    )
    return frontends.view(record)


@router.get("/telegram-frontends/users/{userId}")
def list_of_user(
    userId: str, request: Request, limit: str | None = None, cursor: str | None = None
) -> list[dict[str, Any]]:
    records = frontends.list_frontends_of(userId, limit=limit, cursor=cursor, principal=current_principal(request))
    return [frontends.view(record) for record in records]


@router.get("/telegram-frontends/{id}")
def read(id: str, request: Request) -> dict[str, Any]:
    return frontends.view(frontends.get_frontend(id, current_principal(request)))


@router.put("/telegram-frontends/{id}")
def update(id: str, body: FrontendRequest, request: Request) -> dict[str, Any]:
    record = frontends.update_frontend(
        id,
        user_id=body.userId,
        bot_token=body.botToken,
        chat_chain=body.chatChain,
        description=body.description,
        sync_interval=body.syncInterval,
        last_offset=body.lastOffset,
        status=body.status,
        principal=current_principal(request),
    )
    return frontends.view(record)


@router.delete("/telegram-frontends/{id}")
def delete(id: str, request: Request) -> str:
    frontends.delete_frontend(id, current_principal(request))
    return "Telegram frontend deleted"
