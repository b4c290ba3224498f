"""runtime backends routes.

Contract rows of this group:
- DELETE /backends/{id}
- GET /backends
- GET /backends/{id}
- GET /state
- POST /backends
- PUT /backends/{id}
"""

from typing import Any

from fastapi import APIRouter, Depends, Request

from aiplane.api.auth import current_principal
from aiplane.api.permissions import resource_permission
from aiplane.data.pagination import parse_limit
from aiplane.gateway import registry, registry_store, views
from aiplane.gateway.schemas import BackendBody

router = APIRouter(dependencies=[Depends(resource_permission("backends"))])


@router.get("/backends")
def list_backends(limit: str | None = None, cursor: str | None = None) -> list[dict[str, Any]]:
    backends = registry_store.list_backends(parse_limit(limit), cursor)
    states = registry_store.load_registry().states if backends else {}
    return [views.backend_summary(backend, states.get(backend.id)) for backend in backends]


@router.post("/backends", status_code=201)
def create_backend(body: BackendBody, request: Request) -> dict[str, Any]:
    return views.backend_view(registry.create_backend(body, current_principal(request)))


@router.get("/backends/{id}")
def get_backend(id: str) -> dict[str, Any]:
    return views.backend_summary(registry_store.get_backend(id), registry_store.get_backend_state(id))


@router.put("/backends/{id}")
def update_backend(id: str, body: BackendBody, request: Request) -> dict[str, Any]:
    return views.backend_view(registry.update_backend(id, body, current_principal(request)))


@router.delete("/backends/{id}")
def delete_backend(id: str) -> str:
    registry.delete_backend(id)
    return "backend removed"


@router.get("/state")
def runtime_state() -> list[dict[str, Any]]:
    snapshot = registry_store.load_registry()
    backends = sorted(snapshot.backends.values(), key=lambda backend: backend.created_at)
    return [views.runtime_state(backend, snapshot.states.get(backend.id)) for backend in backends]
