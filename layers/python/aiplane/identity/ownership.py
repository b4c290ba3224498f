"""Ownership of runtime items: who may read, change or delete one chat, file, function, trigger,
task chain, hook or telegram frontend. Every item module asks here; nothing else decides.

An item's rights for a principal, best first:
- admins (and `server` grants) reach every item, at the level they hold;
- the owner (who created it) has manage on it;
- an access entry on exactly `<kind>#<item id>` (resourceType `<kind>`) grants its level on that one item.
Route-group grants (`chats`, `files`, ...) only let a principal use the group for its own items and
the ones shared with it. An item without a recorded owner (made before owners were recorded) is
the bootstrap admin's. Someone who may not even view an item is told it does not exist (404).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from itertools import islice
from typing import TypeVar

from aiplane.errors import ForbiddenError, NotFoundError
from aiplane.identity.access import LEVEL, MANAGE, SERVER, VIEW, permission_of, require_permission
from aiplane.identity.models import AccessEntryRecord
from aiplane.identity.principal import ADMIN, BOOTSTRAP_ADMIN_ID, USER, Principal

CHATS, FILES, FUNCTIONS, TRIGGERS, CHAINS, HOOKS, TELEGRAM = (
    "chats",
    "files",
    "functions",
    "event-triggers",
    "chains",
    "hooks",
    "telegram",
)
# kind -> "module:function" giving an existing item's owner (NotFoundError if there is none);
# imported on use, so identity does not depend on the item modules.
OWNER_LOOKUPS = {
    CHATS: "aiplane.chains.store:chat_owner",
    FILES: "aiplane.files.tree:node_owner",
    FUNCTIONS: "aiplane.events.functions:function_owner",
    TRIGGERS: "aiplane.events.functions:trigger_owner",
    CHAINS: "aiplane.chains.store:task_chain_owner",
    HOOKS: "aiplane.chains.store:hook_owner",
    TELEGRAM: "aiplane.telegram.frontends:frontend_owner",
}
T = TypeVar("T")


def item_resource(kind: str, item_id: str) -> str:
    """The access-entry resource that names one item."""
    return f"{kind}#{item_id}"


def split_item_resource(resource: str) -> tuple[str, str] | None:
    """(kind, item id) for an item resource, None for a group resource (`chats`, `server`...)."""
    kind, separator, item_id = resource.partition("#")
    return (kind, item_id) if separator and kind in OWNER_LOOKUPS and item_id else None


def owner_of(kind: str, item_id: str) -> str:
    module, function = OWNER_LOOKUPS[kind].split(":")
    return getattr(importlib.import_module(module), function)(item_id) or BOOTSTRAP_ADMIN_ID


def level_on(principal: Principal, kind: str, item_id: str, owner_id: str | None) -> str:
    if principal.is_admin:
        return MANAGE
    if principal.kind == USER and principal.id == (owner_id or BOOTSTRAP_ADMIN_ID):
        return MANAGE
    return permission_of(principal, item_resource(kind, item_id))


def require(principal: Principal | None, needed: str, kind: str, item_id: str, owner_id: str | None) -> None:
    """NotFoundError unless the principal may view the item, ForbiddenError unless it holds
    `needed` on it. `None` is the system itself (workers, the chain runner): not checked."""
    if principal is None:
        return
    level = LEVEL[level_on(principal, kind, item_id, owner_id)]
    if level < LEVEL[VIEW]:
        raise NotFoundError(f"{kind} item {item_id!r} not found")
    if level < LEVEL[needed]:
        raise ForbiddenError(f"{needed} permission on {item_resource(kind, item_id)!r} required")


def require_on_resource(principal: Principal, needed: str, resource: str) -> None:
    """The check for a resource string (an access entry's): an item's by ownership, a group's by grants."""
    item = split_item_resource(resource)
    if item is None:
        require_permission(principal, needed, resource)
        return
    try:
        owner_id = owner_of(*item)
    except NotFoundError:  # the item is gone: its stale entries are for admins (or an item manager) to remove
        if LEVEL[permission_of(principal, resource)] < LEVEL[needed]:
            raise
        return
    require(principal, needed, *item, owner_id)


def visibility(principal: Principal | None, kind: str) -> Callable[[str, str | None], bool]:
    """A test `(item id, owner) -> may the principal view it`, for filtering lists (one query)."""
    if principal is None or principal.is_admin or LEVEL[permission_of(principal, SERVER)] >= LEVEL[VIEW]:
        return lambda item_id, owner_id: True
    if principal.kind != USER:
        return lambda item_id, owner_id: False
    prefix = f"{kind}#"
    shared = {
        entry.resource[len(prefix) :]
        for entry in AccessEntryRecord.by_identity.query(f"IDENTITY#{principal.id}")
        if entry.resource.startswith(prefix) and LEVEL.get(entry.permission, 0) >= LEVEL[VIEW]
    }
    return lambda item_id, owner_id: (owner_id or BOOTSTRAP_ADMIN_ID) == principal.id or item_id in shared


def visible_page(
    principal: Principal | None,
    kind: str,
    records: Iterable[T],
    key: Callable[[T], tuple[str, str | None]],
    limit: int | None,
) -> list[T]:
    """The first `limit` (None: all) records the principal may view; `records` is the unbounded, ordered query."""
    may_view = visibility(principal, kind)
    return list(islice((record for record in records if may_view(*key(record))), limit))


def new_owner(principal: Principal | None) -> str:
    """The owner recorded on a new item: the creating principal (an admin key's user, or `admin`)."""
    return principal.id if principal is not None else BOOTSTRAP_ADMIN_ID


def acting_as(owner_id: str | None) -> Principal:
    """The identity an item acts with when it runs unattended (a triggered function): its owner,
    as a plain user whatever key created it, so it never holds more than the owner's grants."""
    owner_id = owner_id or BOOTSTRAP_ADMIN_ID
    return Principal(id=owner_id, kind=ADMIN if owner_id == BOOTSTRAP_ADMIN_ID else USER, credential="owner")
