"""runtime search routes: index chunks, semantic search and keywords, scoped to the caller.
View on `search` to read, edit to index."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from aiplane.activity.tracker import tracked
from aiplane.api.auth import current_principal
from aiplane.api.permissions import resource_permission
from aiplane.files import search

router = APIRouter(dependencies=[Depends(tracked("search", reads=True)), Depends(resource_permission("search"))])
NEXT_CURSOR_HEADER = "X-Next-Cursor"


class IndexRequest(BaseModel):
    id: str
    chunks: list[Any]
    jobId: str | None = None
    leaserId: str | None = None
    replace: bool = False


@router.post("/index")
def index(body: IndexRequest, request: Request) -> dict[str, Any]:
    owner = current_principal(request).id
    return search.index(owner, body.id, body.chunks, replace=body.replace, job_id=body.jobId, leaser_id=body.leaserId)


@router.get("/search")
def semantic_search(
    request: Request,
    q: str | None = None,
    topk: str | None = None,
    radius: str | None = None,
    epsilon: str | None = None,
    expand: str | None = None,
) -> dict[str, Any]:
    principal = current_principal(request)
    return search.search(principal.id, q, topk=topk, radius=radius, epsilon=epsilon, expand=expand, principal=principal)


@router.get("/keywords")
def keywords(request: Request, response: Response, limit: str | None = None, cursor: str | None = None) -> list[str]:
    words, next_cursor = search.list_keywords(current_principal(request).id, limit=limit, cursor=cursor)
    if next_cursor:
        response.headers[NEXT_CURSOR_HEADER] = next_cursor  # the body is a plain array, as the contract says
    return words
