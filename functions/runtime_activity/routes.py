"""runtime activity routes: tracked requests, chain run state and alerts (view on `activity`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from aiplane.activity import views
from aiplane.api.permissions import resource_permission

router = APIRouter(dependencies=[Depends(resource_permission("activity"))])


@router.get("/activity/requests")
def requests(limit: str | None = None) -> list[dict[str, Any]]:
    return views.list_requests(limit)


@router.get("/activity/requests/{id}")
def request_by_id(id: str) -> dict[str, Any]:
    return views.get_request(id)


@router.get("/activity/requests/{id}/state")
def execution_state(id: str) -> list[dict[str, Any]]:
    return views.execution_state(id)


@router.get("/activity/operations")
def operations() -> list[dict[str, Any]]:
    return views.operations()


@router.get("/activity/operations/{op}/{subject}")
def requests_by_operation(op: str, subject: str, limit: str | None = None) -> list[dict[str, Any]]:
    return views.requests_by_operation(op, subject, limit)


@router.get("/activity/stateful-requests")
def stateful_requests(limit: str | None = None) -> list[dict[str, Any]]:
    return views.stateful_requests(limit)


@router.get("/activity/alerts")
def alerts(limit: str | None = None) -> list[dict[str, Any]]:
    return views.alerts(limit)
