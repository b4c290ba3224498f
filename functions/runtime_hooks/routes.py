"""runtime hooks routes: remote hooks and the schemas of every hook.

Contract rows of this group:
- DELETE /hooks/remote/{id}
- GET /hooks/remote
- GET /hooks/remote/by-name/{name}
- GET /hooks/remote/{id}
- GET /hooks/schemas
- POST /hooks/remote
- PUT /hooks/remote/{id}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiplane.api.auth import current_principal
from aiplane.api.permissions import resource_permission
from aiplane.chains import hooks, store
from aiplane.data.pagination import parse_limit

router = APIRouter(dependencies=[Depends(resource_permission("hooks"))])


class InjectionArg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    value: Any = None
    in_: str = Field("body", alias="in")


class RemoteHook(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    id: str | None = None
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    endpointUrl: str = Field(min_length=1, max_length=2000)
    method: str = "POST"
    timeoutMs: int = Field(hooks.DEFAULT_TIMEOUT_MS, ge=1, le=hooks.MAX_TIMEOUT_MS)
    headers: dict[str, str] = Field(default_factory=dict)
    properties: InjectionArg = Field(default_factory=lambda: InjectionArg.model_validate({}))

    @field_validator("endpointUrl")
    @classmethod
    def http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("endpointUrl must be an http or https URL")
        return value

    @field_validator("method")
    @classmethod
    def http_method(cls, value: str) -> str:
        if value.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise ValueError("method must be an HTTP method")
        return value.upper()

    def stored(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


@router.get("/hooks/schemas")
def hook_schemas(request: Request) -> dict[str, Any]:
    return hooks.schemas(current_principal(request))


@router.get("/hooks/remote")
def list_remote_hooks(
    request: Request, limit: str | None = Query(None), cursor: str | None = Query(None)
) -> list[dict[str, Any]]:
    return store.list_hooks(parse_limit(limit), store.parse_cursor(cursor), current_principal(request))


@router.post("/hooks/remote", status_code=201)
def create_remote_hook(hook: RemoteHook, request: Request) -> dict[str, Any]:
    return store.create_hook(hook.stored(), current_principal(request).id)


@router.get("/hooks/remote/by-name/{name}")
def get_remote_hook_by_name(name: str, request: Request) -> dict[str, Any]:
    return store.get_hook_by_name(name, current_principal(request))


@router.get("/hooks/remote/{id}")
def get_remote_hook(id: str, request: Request) -> dict[str, Any]:
    return store.get_hook(id, current_principal(request))


@router.put("/hooks/remote/{id}")
def update_remote_hook(id: str, hook: RemoteHook, request: Request) -> dict[str, Any]:
    return store.update_hook(id, hook.stored(), current_principal(request))  # the path's id wins over the body's


@router.delete("/hooks/remote/{id}")
def delete_remote_hook(id: str, request: Request) -> str:
    store.delete_hook(id, current_principal(request))
    return "deleted"
