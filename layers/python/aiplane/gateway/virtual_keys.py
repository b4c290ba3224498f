"""Virtual keys: LiteLLM's key management API (`/key/generate`, `/key/update`, `/key/info`,
`/key/delete`) over aiplane's API keys, and LiteLLM's `/user/update` for a user's limits.

A virtual key is an ordinary API key (`aiplane.identity.api_keys`) carrying limits: it authenticates on
the runtime family like any other. Admins manage every key; a user manages only their own, and another
user's key is answered as not found.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import UpdateError

from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import ApiKeyRecord, get_or_404
from aiplane.errors import ForbiddenError, NotFoundError, ValidationError
from aiplane.gateway.limits import (
    LIMIT_FIELDS,
    Limits,
    Scope,
    duration_s,
    validate_limits,
)
from aiplane.gateway.spend import adjust_headroom
from aiplane.identity import verified_keys
from aiplane.identity.api_keys import (
    IssuedKey,
    create_owned_key,
    hash_key,
    issue_api_key,
    revoke_api_key,
    revoke_owned_key,
)
from aiplane.identity.models import UserRecord
from aiplane.identity.principal import Principal
from aiplane.identity.users import find_user
from aiplane.settings import current_environment

_KEY_HASH = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_NAME = "virtual key"
KEY_NOT_FOUND = "key not found"  # also for keys the caller may not manage


def _attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Record attributes of the LiteLLM fields present in a request (None clears a limit)."""
    validate_limits(values)
    attributes: dict[str, Any] = {name: values[name] for name in LIMIT_FIELDS if name in values}
    if "models" in values:
        attributes["models"] = set(values["models"]) if values["models"] else None
    if "metadata" in values:
        attributes["key_metadata"] = values["metadata"]
    return attributes


def _expiry(duration: str | None) -> datetime | None:
    return datetime.now(UTC) + timedelta(seconds=duration_s(duration, param="duration")) if duration else None


def generate(principal: Principal, values: dict[str, Any]) -> IssuedKey:
    """A new key for the caller (or, for an admin, for `user_id`); the key is shown once, in its answer."""
    owner_id = values.get("user_id") or principal.id
    if owner_id != principal.id:
        if not principal.is_admin:
            raise ForbiddenError("users generate keys only for themselves", param="user_id")
        if find_user(owner_id) is None:
            raise NotFoundError(f"user {owner_id} not found", param="user_id")
    attributes = _attributes(values)
    name = values.get("key_alias") or DEFAULT_NAME
    expires_at = _expiry(values.get("duration"))
    if principal.is_admin:
        issued = issue_api_key(owner_id, name, expires_at=expires_at, attributes=attributes)
    else:
        issued = create_owned_key(
            owner_id, name, expires_at=expires_at, limit=current_environment().api_keys_per_user, attributes=attributes
        )
    return issued


def _record(principal: Principal, key: str | None) -> ApiKeyRecord:
    """The key (given as itself or as its hash) if the caller may manage it; NotFoundError otherwise."""
    if not key:
        raise ValidationError("key is required", param="key")
    key_hash = key if _KEY_HASH.match(key) else hash_key(key)
    record = get_or_404(
        ApiKeyRecord, f"APIKEY#{key_hash}", "META", missing=KEY_NOT_FOUND, param="key", consistent_read=True
    )
    # Other users' keys, and contract-scoped agent keys, are not theirs to see.
    if record.scope is not None or not (principal.is_admin or record.owner_id == principal.id):
        raise NotFoundError(KEY_NOT_FOUND, param="key")
    return record


def key_hash_of(record: ApiKeyRecord) -> str:
    return record.pk.removeprefix("APIKEY#")


def update(principal: Principal, values: dict[str, Any]) -> ApiKeyRecord:
    record = _record(principal, values.get("key"))
    if values.get("user_id") not in (None, record.owner_id):
        raise ValidationError("a key's user_id cannot change; generate a key for the other user", param="user_id")
    attributes = _attributes(values)
    if "key_alias" in values:
        attributes["name"] = values["key_alias"] or DEFAULT_NAME
    if "duration" in values:
        expires_at = _expiry(values["duration"])
        attributes["expires_at"] = expires_at
        attributes["expires_at_epoch"] = int(expires_at.timestamp()) if expires_at else None
    old_limits = Limits.of(record)
    actions = [
        getattr(ApiKeyRecord, name).set(value) if value is not None else getattr(ApiKeyRecord, name).remove()
        for name, value in attributes.items()
    ]
    if actions:
        try:
            record.update(actions=actions, condition=ApiKeyRecord.pk.exists())
        except UpdateError as error:
            if not refused_by_condition(error):
                raise
            raise NotFoundError(KEY_NOT_FOUND, param="key") from None
    verified_keys.forget(key_hash_of(record))
    new_limits = Limits.of(record)
    if (
        old_limits.max_budget is not None
        and new_limits.max_budget is not None
        and old_limits.budget_duration == new_limits.budget_duration
    ):
        scope = key_scope(record)
        adjust_headroom(scope.name, scope.budget_sk(time.time()), new_limits.max_budget - old_limits.max_budget)
    return record


def info(principal: Principal, key: str | None) -> ApiKeyRecord:
    """The key LiteLLM's `/key/info` describes: `key`, or without it the key the caller authenticated with."""
    if not key:
        verified = verified_keys.by_key_id(principal.claims.get("keyId", ""))
        if verified is None:
            raise ValidationError("key is required (the caller did not authenticate with an API key)", param="key")
        key = verified.key_hash
    return _record(principal, key)


def delete(principal: Principal, keys: list[str]) -> dict[str, Any]:
    """Revokes every key listed, or none: each must be the caller's (or the caller an admin)."""
    records = [_record(principal, key) for key in keys]
    for record in records:
        if principal.is_admin and record.owner_id != principal.id:
            revoke_api_key(key_hash_of(record))
        else:
            revoke_owned_key(record.owner_id, record.key_id)
    return {"deleted_keys": keys}


def key_scope(record: ApiKeyRecord) -> Scope:
    return Scope(f"key#{record.key_id}", Limits.of(record), record.created_at.timestamp())


def update_user_limits(principal: Principal, values: dict[str, Any]) -> UserRecord:
    """LiteLLM's `/user/update` for the gateway limits of a user: administrators only."""
    if not principal.is_admin:
        raise ForbiddenError("only administrators set a user's limits")
    user_id = values.get("user_id")
    if not user_id:
        raise ValidationError("user_id is required", param="user_id")
    validate_limits(values)
    actions = [
        getattr(UserRecord, name).set(values[name]) if values[name] is not None else getattr(UserRecord, name).remove()
        for name in LIMIT_FIELDS
        if name in values
    ]
    user = UserRecord(f"USER#{user_id}", "META")
    if actions:
        try:
            user.update(actions=actions, condition=UserRecord.pk.exists())
        except UpdateError as error:
            if not refused_by_condition(error):
                raise
            raise NotFoundError(f"user {user_id} not found", param="user_id") from None
    verified_keys.forget_owner(user_id)
    record = find_user(user_id)
    if record is None:
        raise NotFoundError(f"user {user_id} not found", param="user_id")
    return record
