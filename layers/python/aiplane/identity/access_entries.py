"""Access entries as the runtime contract shows them: item grants may name a file or folder by
`fileDetails`, and entries on one answer with its `fileDetails`. Apart from `ownership`, because
these read the files tree: only the access routes and the account export need it."""

from __future__ import annotations

from typing import Any

from aiplane.errors import NotFoundError, ValidationError
from aiplane.files import tree
from aiplane.identity.ownership import FILES, OWNER_LOOKUPS, item_resource, split_item_resource


def entry_target(
    resource: str | None, resource_type: str | None, file_details: dict[str, Any] | None
) -> tuple[str | None, str | None]:
    """The resource and resourceType a new access entry names. `fileDetails` ({id} or {path}) may
    name the file or folder instead of `resource`; an item's resourceType is its kind."""
    if file_details:
        node_id = file_details.get("id")
        if not node_id and isinstance(file_details.get("path"), str):
            node_id = tree.node_at(file_details["path"]).node_id
        if not isinstance(node_id, str) or not node_id:
            raise ValidationError("fileDetails names a file or folder by its id or path", param="fileDetails")
        named = item_resource(FILES, node_id)
        if resource and resource.strip() != named:
            raise ValidationError("resource and fileDetails name different items", param="fileDetails")
        resource = named
    if not resource or "#" not in resource:
        return resource, resource_type
    item = split_item_resource(resource.strip())
    if item is None:
        raise ValidationError(
            f"an item resource is <kind>#<id>, kind one of {', '.join(OWNER_LOOKUPS)}", param="resource"
        )
    if resource_type not in (None, "", item[0]):
        raise ValidationError(f"the resourceType of {resource!r} is {item[0]!r}", param="resourceType")
    return resource.strip(), item[0]


def file_details(resource: str) -> dict[str, Any] | None:
    """The contract's `fileDetails` of an entry on a file or folder: what it names, where it is now."""
    item = split_item_resource(resource)
    if item is None or item[0] != FILES:
        return None
    try:
        node = tree.get_node(item[1])
    except NotFoundError:
        return None
    return {"id": node.node_id, "name": node.name, "path": tree.path_of(node), "type": node.kind}
