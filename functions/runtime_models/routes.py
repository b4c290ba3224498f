"""runtime models routes.

Contract rows of this group:
- GET /models (003's internal format; 001's OpenAI list moved to GET /v1/models)
- POST /models
- DELETE /models/{id}
- PUT /models/{id}
- GET /internal/models
Extra routes: GET /v1/models (OpenAI list format), GET /v1/models/{model} (one OpenAI model object).
"""

from typing import Any

from fastapi import APIRouter, Depends

from aiplane.api.permissions import resource_permission
from aiplane.data.pagination import parse_limit
from aiplane.gateway import downloads, registry, registry_store, routing, views
from aiplane.gateway.schemas import ModelBody, ModelUpdateBody

router = APIRouter(dependencies=[Depends(resource_permission("models"))])


@router.get("/models")
def list_models(limit: str | None = None, cursor: str | None = None) -> list[dict[str, Any]]:
    return [views.model_view(model) for model in registry_store.list_models(parse_limit(limit), cursor)]


@router.get("/internal/models")
def list_models_internal(limit: str | None = None, cursor: str | None = None) -> list[dict[str, Any]]:
    return list_models(limit, cursor)


@router.get("/v1/models", include_in_schema=False)
def list_models_openai(limit: str | None = None, cursor: str | None = None) -> dict[str, Any]:
    return views.openai_model_list(registry_store.list_models(parse_limit(limit), cursor))


@router.get("/v1/models/{model:path}", include_in_schema=False)
def retrieve_model_openai(model: str) -> dict[str, Any]:
    return views.openai_model(routing.declared_model(model))


@router.post("/models", status_code=201)
def create_model(body: ModelBody) -> dict[str, Any]:
    return views.model_view(registry.create_model(body))


@router.put("/models/{id}")
def update_model(id: str, body: ModelUpdateBody) -> dict[str, Any]:
    return views.model_view(registry.update_model(id, body))


@router.delete("/models/{id}")
def delete_model(id: str, purge: str | None = None) -> str:
    model = registry_store.find_model(id)
    registry.delete_model(model)
    if (purge or "").lower() == "true":
        downloads.remove_model(model.model)
    return "model removed"
