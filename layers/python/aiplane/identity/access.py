"""Access control: entries `{identity, resource, resourceType, permission}` and the permission
check every runtime group uses.

Levels: none < view < edit < manage. Reading needs view, creating and updating need edit,
deleting and administering access need manage. A grant on the resource `server` covers every
resource; the bootstrap admin holds manage on `server`.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from aiplane.clock import parse_rfc3339, rfc3339
from aiplane.data.models import get_or_404
from aiplane.data.pagination import parse_limit
from aiplane.errors import ConflictError, ForbiddenError, ValidationError
from aiplane.identity.models import AccessClaimRecord, AccessEntryRecord, identity_entries_key
from aiplane.identity.principal import USER, Principal
from aiplane.settings import get_settings

NONE, VIEW, EDIT, MANAGE = "none", "view", "edit", "manage"
PERMISSIONS: tuple[str, ...] = (NONE, VIEW, EDIT, MANAGE)  # increasing privilege
LEVEL = {name: level for level, name in enumerate(PERMISSIONS)}
SERVER = "server"  # the root resource: a grant on it covers every resource

_METHOD_PERMISSION = {
    "GET": VIEW,
    "HEAD": VIEW,
    "OPTIONS": VIEW,
    "POST": EDIT,
    "PUT": EDIT,
    "PATCH": EDIT,
    "DELETE": MANAGE,
}


def permission_for_method(method: str) -> str:
    """The level an HTTP method needs: view to read, edit to create/update, manage to delete."""
    return _METHOD_PERMISSION.get(method.upper(), MANAGE)


# Levels looked up in the last `key_cache_s` (1 s), so a route's permission check does not query on every
# request; a grant changed in another container takes effect within that time, in this one at once.
_recent_levels: dict[tuple[str, str], tuple[float, str]] = {}


def permission_of(principal: Principal, resource: str) -> str:
    """The principal's effective level on a resource: its best grant on exactly it or on `server`."""
    if principal.is_admin:
        return MANAGE
    if principal.kind != USER:
        return NONE
    recent = _recent_levels.get((principal.id, resource))
    if recent is not None and time.monotonic() - recent[0] < get_settings().key_cache_s:
        return recent[1]
    if len(_recent_levels) >= 10_000:
        _recent_levels.clear()
    _recent_levels[(principal.id, resource)] = (time.monotonic(), level := _looked_up(principal, resource))
    return level


def _looked_up(principal: Principal, resource: str) -> str:
    # One Query for both the resource's and `server`'s grants (the filter is exact: `files#x` is not `files`).
    best = NONE
    for entry in AccessEntryRecord.by_identity.query(
        f"IDENTITY#{principal.id}",
        AccessEntryRecord.gsi1sk.startswith("RESOURCE#"),
        filter_condition=AccessEntryRecord.resource.is_in(resource, SERVER),
    ):
        if LEVEL.get(entry.permission, 0) > LEVEL[best]:
            best = entry.permission
    return best


def require_permission(principal: Principal, needed: str, resource: str = SERVER) -> None:
    """ForbiddenError unless the principal holds at least `needed` on `resource`."""
    if LEVEL[permission_of(principal, resource)] < LEVEL[needed]:
        raise ForbiddenError(f"{needed} permission on {resource!r} required")


def _validated_permission(permission: str | None) -> str:
    if permission not in LEVEL:
        raise ValidationError(f"permission must be one of {', '.join(PERMISSIONS)}", param="permission")
    return permission


def _required(value: str | None, param: str) -> str:
    if not value or not value.strip():
        raise ValidationError(f"{param} is required", param=param)
    return value.strip()


def _claim(identity: str, resource_type: str, resource: str) -> AccessClaimRecord:
    return AccessClaimRecord(f"ACCESSKEY#{identity}#{resource_type}#{resource}", "META")


def _connection() -> Connection:
    return Connection(region=get_settings().region)


def create_entry(
    identity: str | None, resource: str | None, resource_type: str | None, permission: str | None
) -> AccessEntryRecord:
    identity = _required(identity, "identity")
    resource = _required(resource, "resource")
    resource_type = _required(resource_type, "resourceType")
    permission = _validated_permission(permission)
    now = datetime.now(UTC)
    entry_id = str(uuid.uuid4())
    entry = AccessEntryRecord(
        f"ACCESS#{entry_id}",
        "META",
        gsi1pk=f"IDENTITY#{identity}",
        gsi1sk=f"RESOURCE#{resource}#{entry_id}",
        gsi2sk=f"{rfc3339(now)}#{entry_id}",
        gsi3pk=identity_entries_key(identity),
        gsi3sk=f"{rfc3339(now)}#{entry_id}",
        entry_id=entry_id,
        identity=identity,
        resource=resource,
        resource_type=resource_type,
        permission=permission,
        created_at=now,
        updated_at=now,
    )
    claim = _claim(identity, resource_type, resource)
    claim.entry_id = entry_id
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.save(claim, condition=AccessClaimRecord.pk.does_not_exist())
            transaction.save(entry, condition=AccessEntryRecord.pk.does_not_exist())
    except TransactWriteError:
        raise ConflictError("an access entry for this identity and resource already exists") from None
    _recent_levels.clear()
    return entry


def get_entry(entry_id: str) -> AccessEntryRecord:
    return get_or_404(AccessEntryRecord, f"ACCESS#{entry_id}", "META", missing=f"access entry {entry_id} not found")


def list_entries(
    *, identity: str | None = None, after: str | None = None, limit: str | int | None = None
) -> list[AccessEntryRecord]:
    """All entries, or one identity's, oldest first after the `from` cursor (an RFC3339 createdAt)."""
    page_size = parse_limit(limit)
    start = rfc3339(parse_rfc3339(after, param="from")) + "#~" if after else None
    if identity:
        return list(
            AccessEntryRecord.by_identity_creation.query(
                identity_entries_key(identity),
                range_key_condition=AccessEntryRecord.gsi3sk > start if start else None,
                limit=page_size,
                page_size=page_size,
            )
        )
    condition = AccessEntryRecord.gsi2sk > start if start else None
    return list(
        AccessEntryRecord.by_creation.query(
            "ACCESS", range_key_condition=condition, limit=page_size, page_size=page_size
        )
    )


def update_entry(entry_id: str, *, permission: str | None) -> AccessEntryRecord:
    """The permission is what changes; identity and resource define the entry (delete and create
    to move a grant)."""
    entry = get_entry(entry_id)
    permission = _validated_permission(permission)
    entry.update(
        actions=[AccessEntryRecord.permission.set(permission), AccessEntryRecord.updated_at.set(datetime.now(UTC))],
        condition=AccessEntryRecord.pk.exists(),
    )
    _recent_levels.clear()
    return entry


def delete_entry(entry: AccessEntryRecord) -> None:
    with TransactWrite(connection=_connection()) as transaction:
        transaction.delete(entry)
        transaction.delete(_claim(entry.identity, entry.resource_type, entry.resource))
    _recent_levels.clear()


def delete_entries_of(identity: str) -> None:
    for entry in AccessEntryRecord.by_identity.query(f"IDENTITY#{identity}"):
        delete_entry(entry)
