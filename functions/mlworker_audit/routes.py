"""mlworker audit routes.

Contract rows of this group:
- GET /v1/audit/chain-root
- GET /v1/audit/events
- POST /v1/audit/verify
"""

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from aiplane.data.pagination import parse_limit
from aiplane.mlworker import audit, audit_digests, views
from aiplane.mlworker.requests import actor_of, require_admin

# The audit log, its verification and its signed head are for admins only.
router = APIRouter(dependencies=[Depends(require_admin)])


@router.get("/v1/audit/events")
def audit_events(
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
    event_type: str | None = None,
    user_id: str | None = None,
    limit: str | None = None,
    offset: int = Query(0, ge=0),
    cursor: str | None = None,
) -> dict[str, Any]:
    page_limit = parse_limit(limit, default=100, maximum=1000)
    page, total = audit.query_events(
        start=start, end=end, event_type=event_type, user_id=user_id, limit=page_limit, offset=offset, cursor=cursor
    )
    body = {
        "events": [views.event_body(event) for event in page.items],
        "limit": page_limit,
        "offset": offset,
        "next_cursor": page.next_cursor,
    }
    return body if total is None else {**body, "total": total}  # no total under filters: see query_events


@router.post("/v1/audit/verify")
def verify(request: Request) -> dict[str, Any]:
    return audit_digests.verify_chain(actor_of(request))


@router.get("/v1/audit/chain-root")
def chain_root() -> dict[str, Any]:
    return audit_digests.chain_root()
