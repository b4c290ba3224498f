"""How users, API keys and access entries answer over HTTP; kept out of the record modules, which
hold reads, writes and rules (views import records, never the other way)."""

from __future__ import annotations

from typing import Any

from aiplane.clock import rfc3339
from aiplane.data.models import ApiKeyRecord
from aiplane.identity.models import AccessEntryRecord, UserRecord


def runtime_view(user: UserRecord) -> dict[str, object]:
    return {
        "id": user.user_id,
        "friendlyName": user.friendly_name,
        "email": user.email,
        "subject": user.subject,
        "createdAt": rfc3339(user.created_at),
        "updatedAt": rfc3339(user.updated_at),
    }


def gpufarm_view(user: UserRecord) -> dict[str, object]:
    return {"id": user.user_id, "email": user.email, "name": user.friendly_name, "created_at": rfc3339(user.created_at)}


def key_view(record: ApiKeyRecord) -> dict[str, Any]:
    """A key's metadata as its owner sees it (never the key or its hash)."""
    return {
        "id": record.key_id,
        "name": record.name,
        "prefix": record.prefix,
        "revoked": record.revoked,
        "created_at": rfc3339(record.created_at),
        "expires_at": rfc3339(record.expires_at) if record.expires_at else None,
    }


def entry_view(
    entry: AccessEntryRecord,
    file_details: dict[str, Any] | None = None,
    *,
    expand_user: bool = False,
    user: UserRecord | None = None,
) -> dict[str, object]:
    """`file_details`: the item's (access_entries.file_details); `user`: the identity's, shown when `expand_user`."""
    view: dict[str, object] = {
        "id": entry.entry_id,
        "identity": entry.identity,
        "resource": entry.resource,
        "resourceType": entry.resource_type,
        "permission": entry.permission,
        "createdAt": rfc3339(entry.created_at),
        "updatedAt": rfc3339(entry.updated_at),
    }
    if file_details is not None:
        view["fileDetails"] = file_details
    if expand_user:
        view["identityDetails"] = runtime_view(user) if user else None
        view["withUserDetails"] = True
    return view
