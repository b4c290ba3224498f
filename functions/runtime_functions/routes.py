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

from fastapi import APIRouter, Body, Depends, Query

from aiplane.api.permissions import resource_permission
from aiplane.data.pagination import parse_limit
from aiplane.events import functions
from aiplane.gateway.clock import parse_cursor

router = APIRouter(dependencies=[Depends(resource_permission("functions"))])


@router.get("/functions")
def list_functions(limit: str | None = Query(None), cursor: str | None = Query(None)) -> list[dict[str, Any]]:
    return functions.list_functions(parse_limit(limit), parse_cursor(cursor))


@router.post("/functions", status_code=201)
def create_function(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return functions.create_function(body)


@router.get("/functions/{name}")
def get_function(name: str) -> dict[str, Any]:
    return functions.function_view(functions.get_function(name))


@router.put("/functions/{name}")
def update_function(name: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return functions.update_function(name, body)  # the path's name wins over the body's


@router.delete("/functions/{name}")
def delete_function(name: str) -> str:
    functions.delete_function(name)
    return "function deleted"


@router.get("/event-triggers")
def list_triggers(limit: str | None = Query(None), cursor: str | None = Query(None)) -> list[dict[str, Any]]:
    return functions.list_triggers(parse_limit(limit), parse_cursor(cursor))


@router.post("/event-triggers", status_code=201)
def create_trigger(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return functions.create_trigger(body)


@router.get("/event-triggers/event-type/{eventType}")
def triggers_for_event_type(eventType: str) -> list[dict[str, Any]]:
    return [functions.trigger_view(record) for record in functions.triggers_for_event_type(eventType)]


@router.get("/event-triggers/function/{functionName}")
def triggers_for_function(functionName: str) -> list[dict[str, Any]]:
    return functions.triggers_for_function(functionName)


@router.get("/event-triggers/{name}")
def get_trigger(name: str) -> dict[str, Any]:
    return functions.trigger_view(functions.get_trigger(name))


@router.put("/event-triggers/{name}")
def update_trigger(name: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return functions.update_trigger(name, body)


@router.delete("/event-triggers/{name}")
def delete_trigger(name: str) -> str:
    functions.delete_trigger(name)
    return "event trigger deleted"
