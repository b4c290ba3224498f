"""runtime groups routes: pools (001) and affinity groups (003) are one resource, and so are
backend-associations/backend-affinity and model-associations/model-affinity.

Contract rows of this group:
- /pools, /pools/{id}, /pool-by-name/{name}, /pool-by-purpose/{purpose}
- /groups, /groups/{id}, /group-by-name/{name}, /group-by-purpose/{purpose}
- /backend-associations/..., /backend-affinity/...
- /model-associations/..., /model-affinity/...
"""

from typing import Any

from fastapi import APIRouter, Depends, Path

from aiplane.api.permissions import resource_permission
from aiplane.data.pagination import parse_limit
from aiplane.gateway import registry, registry_store, views
from aiplane.gateway.registry_store import BACKEND, MODEL
from aiplane.gateway.schemas import GroupBody

router = APIRouter(dependencies=[Depends(resource_permission("groups"))])


def list_groups(limit: str | None = None, cursor: str | None = None) -> list[dict[str, Any]]:
    return [views.group_view(group) for group in registry_store.list_groups(parse_limit(limit), cursor)]


def create_group(body: GroupBody) -> dict[str, Any]:
    return views.group_view(registry.create_group(body))


def get_group(id: str) -> dict[str, Any]:
    return views.group_view(registry_store.get_group(id))


def update_group(id: str, body: GroupBody) -> dict[str, Any]:
    return views.group_view(registry.update_group(id, body))


def delete_group(id: str) -> str:
    registry.delete_group(id)
    return "deleted"


def group_by_name(name: str) -> dict[str, Any]:
    return views.group_view(registry_store.get_group_by_name(name))


def groups_by_purpose(purpose: str, limit: str | None = None, cursor: str | None = None) -> list[dict[str, Any]]:
    return [
        views.group_view(group) for group in registry_store.list_groups_by_purpose(purpose, parse_limit(limit), cursor)
    ]


for collection, by in (("/pools", "/pool-by-"), ("/groups", "/group-by-")):
    router.add_api_route(collection, list_groups, methods=["GET"])
    router.add_api_route(collection, create_group, methods=["POST"], status_code=201)
    router.add_api_route(collection + "/{id}", get_group, methods=["GET"])
    router.add_api_route(collection + "/{id}", update_group, methods=["PUT"])
    router.add_api_route(collection + "/{id}", delete_group, methods=["DELETE"])
    router.add_api_route(by + "name/{name}", group_by_name, methods=["GET"])
    router.add_api_route(by + "purpose/{purpose}", groups_by_purpose, methods=["GET"])


# Memberships. The paths of 001 and 003 differ only in their names (pool/group, poolID/groupID).
def _backend_routes(prefix: str, group_param: str, groups_segment: str) -> None:
    def groups_of_backend(backendID: str) -> list[dict[str, Any]]:
        return [views.group_view(group) for group in registry.groups_of_member(BACKEND, backendID)]

    def backends_of_group(group_id: str = Path(alias=group_param)) -> list[dict[str, Any]]:
        return [views.backend_view(backend) for backend in registry.members_of_group(group_id, BACKEND)]

    def assign_backend(backendID: str, group_id: str = Path(alias=group_param)) -> str:
        registry.assign(group_id, BACKEND, backendID)
        return "backend assigned"

    def remove_backend(backendID: str, group_id: str = Path(alias=group_param)) -> str:
        registry.unassign(group_id, BACKEND, backendID)
        return "backend removed"

    router.add_api_route(f"{prefix}/{{backendID}}/{groups_segment}", groups_of_backend, methods=["GET"])
    router.add_api_route(f"{prefix}/{{{group_param}}}/backends", backends_of_group, methods=["GET"])
    router.add_api_route(
        f"{prefix}/{{{group_param}}}/backends/{{backendID}}", assign_backend, methods=["POST"], status_code=201
    )
    router.add_api_route(f"{prefix}/{{{group_param}}}/backends/{{backendID}}", remove_backend, methods=["DELETE"])


def _model_routes(prefix: str, group_param: str, groups_segment: str) -> None:
    def groups_of_model(modelID: str) -> list[dict[str, Any]]:
        return [views.group_view(group) for group in registry.groups_of_member(MODEL, modelID)]

    def models_of_group(group_id: str = Path(alias=group_param)) -> list[dict[str, Any]]:
        return [views.model_view(model) for model in registry.members_of_group(group_id, MODEL)]

    def assign_model(modelID: str, group_id: str = Path(alias=group_param)) -> str:
        registry.assign(group_id, MODEL, modelID)
        return "model assigned"

    def remove_model(modelID: str, group_id: str = Path(alias=group_param)) -> str:
        registry.unassign(group_id, MODEL, modelID)
        return "model removed"

    router.add_api_route(f"{prefix}/{{modelID}}/{groups_segment}", groups_of_model, methods=["GET"])
    router.add_api_route(f"{prefix}/{{{group_param}}}/models", models_of_group, methods=["GET"])
    router.add_api_route(f"{prefix}/{{{group_param}}}/models/{{modelID}}", assign_model, methods=["POST"])
    router.add_api_route(f"{prefix}/{{{group_param}}}/models/{{modelID}}", remove_model, methods=["DELETE"])


_backend_routes("/backend-associations", "poolID", "pools")
_backend_routes("/backend-affinity", "groupID", "groups")
_model_routes("/model-associations", "poolID", "pools")
_model_routes("/model-affinity", "groupID", "groups")
