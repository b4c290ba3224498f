"""runtime functions routes: stored JavaScript functions and the event triggers that run them.

Contract rows of this group:
- DELETE /event-triggers/{name}
- DELETE /functions/{name}
- GET /event-triggers
- GET /event-triggers/event-type/{eventType}
- GET /event-triggers/function/{functionName}
- GET /event-triggers/{name}
- GET /functions
- GET /functions/{name}
- POST /event-triggers
- POST /functions
- PUT /event-triggers/{name}
- PUT /functions/{name}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request

from aiplane.api.auth import current_principal
from aiplane.api.permissions import resource_permission
from aiplane.data.pagination import parse_limit, timestamp_cursor
from aiplane.events import functions, views

router = APIRouter(dependencies=[Depends(resource_permission("functions"))])


@router.get("/functions")
def list_functions(
    request: Request, limit: str | None = Query(None), cursor: str | None = Query(None)
) -> list[dict[str, Any]]:
    return functions.list_functions(parse_limit(limit), timestamp_cursor(cursor), current_principal(request))


@router.post("/functions", status_code=201)
def create_function(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return functions.create_function(body, current_principal(request).id)


@router.get("/functions/{name}")
def get_function(name: str, request: Request) -> dict[str, Any]:
    return views.function_view(functions.get_function(name, current_principal(request)))


@router.put("/functions/{name}")
def update_function(name: str, request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return functions.update_function(name, body, current_principal(request))  # the path's name wins over the body's


@router.delete("/functions/{name}")
def delete_function(name: str, request: Request) -> str:
    functions.delete_function(name, current_principal(request))
    return "function deleted"


@router.get("/event-triggers")
def list_triggers(
    request: Request, limit: str | None = Query(None), cursor: str | None = Query(None)
) -> list[dict[str, Any]]:
    return functions.list_triggers(parse_limit(limit), timestamp_cursor(cursor), current_principal(request))


@router.post("/event-triggers", status_code=201)
def create_trigger(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return functions.create_trigger(body, current_principal(request).id)


@router.get("/event-triggers/event-type/{eventType}")
def triggers_for_event_type(eventType: str, request: Request) -> list[dict[str, Any]]:
    return [
        views.trigger_view(record)
        for record in functions.triggers_for_event_type(eventType, current_principal(request))
    ]


@router.get("/event-triggers/function/{functionName}")
def triggers_for_function(
    functionName: str, request: Request, limit: str | None = Query(None), cursor: str | None = Query(None)
) -> list[dict[str, Any]]:
    return functions.triggers_for_function(
        functionName, parse_limit(limit), timestamp_cursor(cursor), current_principal(request)
    )


@router.get("/event-triggers/{name}")
def get_trigger(name: str, request: Request) -> dict[str, Any]:
    return views.trigger_view(functions.get_trigger(name, current_principal(request)))


@router.put("/event-triggers/{name}")
def update_trigger(name: str, request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return functions.update_trigger(name, body, current_principal(request))


@router.delete("/event-triggers/{name}")
def delete_trigger(name: str, request: Request) -> str:
    functions.delete_trigger(name, current_principal(request))
    return "event trigger deleted"
