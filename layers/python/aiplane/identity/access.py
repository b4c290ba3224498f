"""Access control: entries `{identity, resource, resourceType, permission}` and the permission
check every runtime group uses.

Levels: none < view < edit < manage. Reading needs view, creating and updating need edit,
deleting and administering access need manage. A grant on the resource `server` covers every
resource; the bootstrap admin holds manage on `server`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import NamedTuple

from pynamodb.transactions import TransactWrite

from aiplane import clock
from aiplane.clock import parse_rfc3339, rfc3339
from aiplane.data.claims import create_claimed, delete_claimed
from aiplane.data.models import get_or_404
from aiplane.data.pagination import parse_limit
from aiplane.errors import ForbiddenError, ValidationError
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


class Granted(NamedTuple):
    """A check passed through one access entry: the gateway's admission transaction re-checks that the
    entry still holds `level` (`check_in`), so a grant busy on the gateway is not looked up again."""

    principal_id: str
    resource: str
    needed: str
    level: str
    entry_pk: str  # the access entry holding `level` (the best grant on the resource or on `server`)


# Levels looked up, or confirmed by a gateway admission (`confirm`), in the last `key_cache_s` (1 s), so a
# route's permission check does not query on every request. A grant changed in another container takes effect
# within that time, on the gateway at its next admission, in this container at once.
# (principal, resource) -> (trusted since, looked up at, level, the entry granting it; None for `none`)
_recent_levels: dict[tuple[str, str], tuple[float, float, str, str | None]] = {}


def permission_of(principal: Principal, resource: str) -> str:
    """The principal's effective level on a resource: its best grant on exactly it or on `server`."""
    return _level_of(principal, resource)[0]


def _level_of(principal: Principal, resource: str) -> tuple[str, str | None]:
    if principal.is_admin:
        return MANAGE, None
    if principal.kind != USER:
        return NONE, None
    recent = _recent_levels.get((principal.id, resource))
    if recent is not None and clock.monotonic() - recent[0] < get_settings().key_cache_s:
        return recent[2], recent[3]
    if len(_recent_levels) >= 10_000:
        _recent_levels.clear()
    level, entry_pk = _looked_up(principal, resource)
    now = clock.monotonic()
    _recent_levels[(principal.id, resource)] = (now, now, level, entry_pk)
    return level, entry_pk


def _looked_up(principal: Principal, resource: str) -> tuple[str, str | None]:
    # One Query for both the resource's and `server`'s grants (the filter is exact: `files#x` is not `files`).
    best, best_pk = NONE, None
    for entry in AccessEntryRecord.by_identity.query(
        f"IDENTITY#{principal.id}",
        AccessEntryRecord.gsi1sk.startswith("RESOURCE#"),
        filter_condition=AccessEntryRecord.resource.is_in(resource, SERVER),
    ):
        if LEVEL.get(entry.permission, 0) > LEVEL[best]:
            best, best_pk = entry.permission, entry.pk
    return best, best_pk


def require_permission(principal: Principal, needed: str, resource: str = SERVER) -> Granted | None:
    """ForbiddenError unless the principal holds at least `needed` on `resource`; what granted it when an
    access entry did (None for an admin)."""
    level, entry_pk = _level_of(principal, resource)
    if LEVEL[level] < LEVEL[needed]:
        recent = _recent_levels.get((principal.id, resource))
        if recent is not None and clock.monotonic() - recent[1] >= get_settings().key_cache_s:
            # Kept by admissions since its lookup: a grant added elsewhere meanwhile is seen before refusing.
            _recent_levels.pop((principal.id, resource), None)
            level, entry_pk = _level_of(principal, resource)
        if LEVEL[level] < LEVEL[needed]:
            raise forbidden(needed, resource)
    if entry_pk is None:
        return None
    return Granted(principal.id, resource, needed, level, entry_pk)


def forbidden(needed: str, resource: str) -> ForbiddenError:
    return ForbiddenError(f"{needed} permission on {resource!r} required")


def check_in(transaction: TransactWrite, granted: Granted) -> None:
    """Add to a transaction the condition that the granting entry still holds its level (deleted or
    changed, the transaction is cancelled: `recheck`)."""
    transaction.condition_check(
        AccessEntryRecord, granted.entry_pk, "META", condition=AccessEntryRecord.permission == granted.level
    )


def confirm(granted: Granted) -> None:
    """A DynamoDB condition just proved the grant in place: trust the level afresh."""
    key = (granted.principal_id, granted.resource)
    recent = _recent_levels.get(key)
    if recent is not None and recent[2:] == (granted.level, granted.entry_pk):
        _recent_levels[key] = (clock.monotonic(), *recent[1:])


def recheck(principal: Principal, granted: Granted) -> Granted | None:
    """The grant's entry changed elsewhere: look the level up again; ForbiddenError if it no longer holds."""
    _recent_levels.pop((granted.principal_id, granted.resource), None)
    return require_permission(principal, granted.needed, granted.resource)


def _validated_permission(permission: str | None) -> str:
    if permission not in LEVEL:
        raise ValidationError(f"permission must be one of {', '.join(PERMISSIONS)}", param="permission")
    return permission


def _required(value: str | None, param: str) -> str:
    if not value or not value.strip():
        raise ValidationError(f"{param} is required", param=param)
    return value.strip()


def _claim(identity: str, resource_type: str, resource: str, entry_id: str | None = None) -> AccessClaimRecord:
    return AccessClaimRecord(f"ACCESSKEY#{identity}#{resource_type}#{resource}", "META", entry_id=entry_id)


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
    create_claimed(
        entry,
        _claim(identity, resource_type, resource, entry_id),
        "an access entry for this identity and resource already exists",
    )
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
    delete_claimed(entry, _claim(entry.identity, entry.resource_type, entry.resource), None)
    _recent_levels.clear()


def delete_entries_of(identity: str) -> None:
    for entry in AccessEntryRecord.by_identity.query(f"IDENTITY#{identity}"):
        delete_entry(entry)
