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

from pynamodb.exceptions import DoesNotExist, UpdateError

from aiplane.data.models import ApiKeyRecord
from aiplane.errors import ForbiddenError, NotFoundError, ValidationError
from aiplane.gateway.limits import (
    LIMIT_FIELDS,
    Limits,
    Scope,
    duration_s,
    validate_limits,
)
from aiplane.gateway.spend import adjust_headroom, scope_spend
from aiplane.identity import verified_keys
from aiplane.identity.api_keys import (
    create_owned_key,
    hash_key,
    is_active,
    issue_api_key,
    revoke_api_key,
    revoke_owned_key,
)
from aiplane.identity.models import UserRecord
from aiplane.identity.principal import Principal
from aiplane.identity.users import find_user, rfc3339
from aiplane.settings import current_environment

_KEY_HASH = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_NAME = "virtual key"


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


def generate(principal: Principal, values: dict[str, Any]) -> dict[str, Any]:
    """A new key for the caller (or, for an admin, for `user_id`); the key is shown once, here."""
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
    return {"key": issued.api_key, **_view(issued.record)}


def _record(principal: Principal, key: str | None) -> ApiKeyRecord:
    """The key (given as itself or as its hash) if the caller may manage it; NotFoundError otherwise."""
    if not key:
        raise ValidationError("key is required", param="key")
    key_hash = key if _KEY_HASH.match(key) else hash_key(key)
    try:
        record = ApiKeyRecord.get(f"APIKEY#{key_hash}", "META", consistent_read=True)
    except DoesNotExist:
        record = None
    # Other users' keys, and contract-scoped agent keys, are not theirs to see.
    if record is None or record.scope is not None or not (principal.is_admin or record.owner_id == principal.id):
        raise NotFoundError("key not found", param="key")
    return record


def _key_hash(record: ApiKeyRecord) -> str:
    return record.pk.removeprefix("APIKEY#")


def update(principal: Principal, values: dict[str, Any]) -> dict[str, Any]:
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
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            raise NotFoundError("key not found", param="key") from None
    verified_keys.forget(_key_hash(record))
    new_limits = Limits.of(record)
    if (
        old_limits.max_budget is not None
        and new_limits.max_budget is not None
        and old_limits.budget_duration == new_limits.budget_duration
    ):
        scope = _scope(record)
        adjust_headroom(scope.name, scope.budget_sk(time.time()), new_limits.max_budget - old_limits.max_budget)
    return _view(record)


def info(principal: Principal, key: str | None) -> dict[str, Any]:
    """LiteLLM's `{key, info}`: the key's limits and its spend in the current budget period.
    Without `key`, the key the caller authenticated with."""
    if not key:
        verified = verified_keys.by_key_id(principal.claims.get("keyId", ""))
        if verified is None:
            raise ValidationError("key is required (the caller did not authenticate with an API key)", param="key")
        key = verified.key_hash
    record = _record(principal, key)
    return {"key": _key_hash(record), "info": _view(record)}


def delete(principal: Principal, keys: list[str]) -> dict[str, Any]:
    """Revokes every key listed, or none: each must be the caller's (or the caller an admin)."""
    records = [_record(principal, key) for key in keys]
    for record in records:
        if principal.is_admin and record.owner_id != principal.id:
            revoke_api_key(_key_hash(record))
        else:
            revoke_owned_key(record.owner_id, record.key_id)
    return {"deleted_keys": keys}


def _scope(record: ApiKeyRecord) -> Scope:
    return Scope(f"key#{record.key_id}", Limits.of(record), record.created_at.timestamp())


def _view(record: ApiKeyRecord) -> dict[str, Any]:
    now = time.time()
    scope = _scope(record)
    reset_at = scope.budget_reset_at(now)
    return {
        "token": _key_hash(record),
        "key_name": record.prefix,
        "key_alias": record.name,
        "user_id": record.owner_id,
        "models": sorted(record.models or ()),
        "metadata": record.key_metadata or {},
        **{name: getattr(record, name) for name in LIMIT_FIELDS},
        "spend": scope_spend(scope.name, scope.budget_sk(now)),
        "budget_reset_at": rfc3339(datetime.fromtimestamp(reset_at, UTC)) if reset_at else None,
        "expires": rfc3339(record.expires_at) if record.expires_at else None,
        "created_at": rfc3339(record.created_at),
        "blocked": not is_active(record),
    }


def update_user_limits(principal: Principal, values: dict[str, Any]) -> dict[str, Any]:
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
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            raise NotFoundError(f"user {user_id} not found", param="user_id") from None
    verified_keys.forget_owner(user_id)
    record = find_user(user_id)
    if record is None:
        raise NotFoundError(f"user {user_id} not found", param="user_id")
    scope = Scope(f"user#{user_id}", Limits.of(record), record.created_at.timestamp())
    return {
        "user_id": user_id,
        **{name: getattr(record, name) for name in LIMIT_FIELDS},
        "spend": scope_spend(scope.name, scope.budget_sk(time.time())),
    }
