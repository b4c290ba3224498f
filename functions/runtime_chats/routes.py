"""runtime chats routes: chat sessions whose turns run the chat chain.

Contract rows of this group:
- GET /chats
- GET /chats/{id}
- POST /chats
- POST /chats/{id}/chat
- POST /chats/{id}/instruction
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from aiplane.api.auth import current_principal
from aiplane.api.permissions import resource_permission
from aiplane.chains import chats, store
from aiplane.data.pagination import parse_limit

router = APIRouter(dependencies=[Depends(resource_permission("chats"))])


class NewChat(BaseModel):
    subject: str = Field("", max_length=500)


class ChatMessage(BaseModel):
    message: str = Field(min_length=1)
    models: list[str] = Field(default_factory=list)
    provider: str = ""


class Instruction(BaseModel):
    instruction: str = Field(min_length=1)


@router.post("/chats", status_code=201)
def create_chat(body: NewChat, request: Request) -> dict[str, Any]:
    return {"id": store.create_chat(body.subject, current_principal(request).id)["id"]}


@router.get("/chats")
def list_chats(
    request: Request, limit: str | None = Query(None), cursor: str | None = Query(None)
) -> list[dict[str, Any]]:
    return store.list_chats(parse_limit(limit), store.parse_cursor(cursor), current_principal(request))


@router.get("/chats/{id}")
def chat_history(id: str, request: Request) -> list[dict[str, Any]]:
    store.get_chat(id, current_principal(request))
    return store.chat_messages(id)


@router.post("/chats/{id}/chat")
def chat(id: str, body: ChatMessage, request: Request) -> dict[str, Any]:
    return chats.chat_turn(id, body.message, body.models, body.provider, current_principal(request))


@router.post("/chats/{id}/instruction")
def add_instruction(id: str, body: Instruction, request: Request) -> dict[str, Any]:
    chats.add_instruction(id, body.instruction, current_principal(request))
    return {"resp": "instruction added"}
