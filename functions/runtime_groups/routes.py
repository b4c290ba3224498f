"""runtime groups routes: pools (001) and affinity groups (003) are one resource, and so are
backend-associations/backend-affinity and model-associations/model-affinity.

Contract rows of this group:
- /pools, /pools/{id}, /pool-by-name/{name}, /pool-by-purpose/{purpose}
- /groups, /groups/{id}, /group-by-name/{name}, /group-by-purpose/{purpose}
- /backend-associations/..., /backend-affinity/...
- /model-associations/..., /model-affinity/...
"""

from collections.abc import Callable
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


# Memberships. The paths of 001 and 003 differ only in their names (pool/group, poolID/groupID);
# backends and models differ in their names, their views and assign's status (the contracts'). Path
# aliases keep each contract's parameter names.
def _member_routes(
    prefix: str,
    group_param: str,
    groups_segment: str,
    *,
    noun: str,
    kind: str,
    member_param: str,
    view: Callable[[Any], dict[str, Any]],
    assign_status: int,
) -> None:
    segment = f"{noun}s"

    def groups_of_member(member_id: str = Path(alias=member_param)) -> list[dict[str, Any]]:
        return [views.group_view(group) for group in registry.groups_of_member(kind, member_id)]

    def members_of_group(group_id: str = Path(alias=group_param)) -> list[dict[str, Any]]:
        return [view(member) for member in registry.members_of_group(group_id, kind)]

    def assign_member(member_id: str = Path(alias=member_param), group_id: str = Path(alias=group_param)) -> str:
        registry.assign(group_id, kind, member_id)
        return f"{noun} assigned"

    def remove_member(member_id: str = Path(alias=member_param), group_id: str = Path(alias=group_param)) -> str:
        registry.unassign(group_id, kind, member_id)
        return f"{noun} removed"

    member_path = f"{prefix}/{{{group_param}}}/{segment}/{{{member_param}}}"
    router.add_api_route(f"{prefix}/{{{member_param}}}/{groups_segment}", groups_of_member, methods=["GET"])
    router.add_api_route(f"{prefix}/{{{group_param}}}/{segment}", members_of_group, methods=["GET"])
    router.add_api_route(member_path, assign_member, methods=["POST"], status_code=assign_status)
    router.add_api_route(member_path, remove_member, methods=["DELETE"])


for noun, kind, member_param, view, assign_status in (
    ("backend", BACKEND, "backendID", views.backend_view, 201),
    ("model", MODEL, "modelID", views.model_view, 200),
):
    for suffix, group_param, groups_segment in (
        ("-associations", "poolID", "pools"),
        ("-affinity", "groupID", "groups"),
    ):
        _member_routes(
            f"/{noun}{suffix}",
            group_param,
            groups_segment,
            noun=noun,
            kind=kind,
            member_param=member_param,
            view=view,
            assign_status=assign_status,
        )
