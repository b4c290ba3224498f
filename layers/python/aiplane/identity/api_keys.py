"""API keys: generated with enough entropy that a plain SHA-256 is a safe stored form, and
looked up by that hash (a GetItem, no Scan).

Keys a user creates for themselves are capped: their hashes are kept in one set item per user,
and a new key joins the set in the same transaction that writes it, only while the set is
below the cap (so concurrent creations cannot pass it together). Revoking or expiry frees a place.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypedDict, Unpack

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.transactions import TransactWrite

from aiplane.data.conditions import cancelled, refused_by_condition
from aiplane.data.models import ApiKeyRecord, get_or_none
from aiplane.errors import ConflictError, NotFoundError
from aiplane.identity import verified_keys
from aiplane.identity.models import OwnedKeysRecord
from aiplane.settings import get_settings

KEY_PREFIX = "aip_"
DISPLAY_PREFIX_LENGTH = 12
# A key of this scope authenticates one GPU contract's agent on the agent routes only.
GPU_AGENT_SCOPE = "gpu-agent"


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def record_key(api_key: str) -> str:
    return f"APIKEY#{hash_key(api_key)}"


class IssuedKey(NamedTuple):
    key_id: str
    api_key: str  # shown once, never stored
    record: ApiKeyRecord


class KeyOptions(TypedDict, total=False):
    """What a new key may carry beyond its owner and name (`_new_key`'s keyword parameters)."""

    is_admin: bool
    expires_at: datetime | None
    rate_limit: int | None
    scope: str | None
    contract_id: str | None
    attributes: dict[str, Any] | None


def issue_api_key(owner_id: str, name: str, **options: Unpack[KeyOptions]) -> IssuedKey:
    issued = _new_key(owner_id, name, **options)
    # The hash is the key: a collision would be a generator failure, so refuse to overwrite.
    issued.record.save(condition=ApiKeyRecord.pk.does_not_exist())
    return issued


def _new_key(
    owner_id: str,
    name: str,
    *,
    is_admin: bool = False,
    expires_at: datetime | None = None,
    rate_limit: int | None = None,
    scope: str | None = None,
    contract_id: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> IssuedKey:
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    record = ApiKeyRecord(
        record_key(api_key),
        "META",
        # A scoped key is the contract's, not one of the user's keys: it stays out of their key list.
        gsi1pk=None if scope else f"OWNER#{owner_id}",
        gsi1sk=None if scope else now.isoformat(),
        key_id=str(uuid.uuid4()),
        prefix=api_key[:DISPLAY_PREFIX_LENGTH],
        name=name,
        owner_id=owner_id,
        is_admin=is_admin,
        created_at=now,
        expires_at=expires_at,
        expires_at_epoch=int(expires_at.timestamp()) if expires_at else None,
        rate_limit=rate_limit,
        scope=scope,
        contract_id=contract_id,
        **(attributes or {}),  # a virtual key's limits (aiplane.gateway.virtual_keys)
    )
    return IssuedKey(key_id=record.key_id, api_key=api_key, record=record)


def _owned(owner_id: str) -> OwnedKeysRecord:
    return OwnedKeysRecord(f"APIKEYS#{owner_id}", "META")


def create_owned_key(
    owner_id: str, name: str, *, expires_at: datetime | None, limit: int, attributes: dict[str, Any] | None = None
) -> IssuedKey:
    """A key the user creates for themselves; ConflictError when they already hold `limit` active ones."""
    issued = _new_key(owner_id, name, expires_at=expires_at, attributes=attributes)
    if not _save_within_cap(issued, limit) and not (_forget_inactive(owner_id) and _save_within_cap(issued, limit)):
        raise ConflictError(f"at most {limit} active API keys per user; revoke one first")
    return issued


def _save_within_cap(issued: IssuedKey, limit: int) -> bool:
    owner_id = issued.record.owner_id
    try:
        with TransactWrite(connection=Connection(region=get_settings().region)) as transaction:
            transaction.update(
                _owned(owner_id),
                actions=[OwnedKeysRecord.key_hashes.add({hash_key(issued.api_key)})],
                condition=OwnedKeysRecord.key_hashes.does_not_exist() | (size(OwnedKeysRecord.key_hashes) < limit),
            )
            transaction.save(issued.record, condition=ApiKeyRecord.pk.does_not_exist())
    except TransactWriteError as error:
        if not cancelled(error):
            raise
        return False
    return True


def _forget_inactive(owner_id: str) -> bool:
    """Frees the places of keys that expired or were revoked outside `revoke_owned_key`."""
    owned = get_or_none(OwnedKeysRecord, f"APIKEYS#{owner_id}", "META", consistent_read=True)
    if owned is None:
        return False
    held = owned.key_hashes or set()
    inactive = {key_hash for key_hash in held if _find_active_by_hash(key_hash) is None}
    if inactive:
        _owned(owner_id).update(actions=[OwnedKeysRecord.key_hashes.delete(inactive)])
    return bool(inactive)


def _find_active_by_hash(key_hash: str) -> ApiKeyRecord | None:
    record = get_or_none(ApiKeyRecord, f"APIKEY#{key_hash}", "META", consistent_read=True)
    return record if record is not None and is_active(record) else None


def is_active(record: ApiKeyRecord) -> bool:
    # TTL deletes lazily (and never in moto): expiry is checked on read.
    return not record.revoked and (record.expires_at is None or record.expires_at > datetime.now(UTC))


def find_active_key(api_key: str) -> ApiKeyRecord | None:
    """The key's record if it exists, is not revoked and has not expired."""
    record = get_or_none(ApiKeyRecord, record_key(api_key), "META")
    return record if record is not None and is_active(record) else None


def keys_of(owner_id: str) -> list[ApiKeyRecord]:
    """A user's keys, oldest first (revoked and expired ones included)."""
    return list(ApiKeyRecord.by_owner.query(f"OWNER#{owner_id}"))


def revoke_api_key(api_key_hash: str) -> None:
    ApiKeyRecord(f"APIKEY#{api_key_hash}", "META").update(actions=[ApiKeyRecord.revoked.set(True)])
    verified_keys.forget(api_key_hash)


def revoke_owned_key(owner_id: str, key_id: str) -> ApiKeyRecord:
    """The owner revokes one of their keys (by its id); NotFoundError for anyone else's."""
    record = next((key for key in keys_of(owner_id) if key.key_id == key_id), None)
    if record is None:
        raise NotFoundError(f"API key {key_id} not found", param="key_id")
    key_hash = record.pk.removeprefix("APIKEY#")
    revoke_api_key(key_hash)
    try:
        _owned(owner_id).update(
            actions=[OwnedKeysRecord.key_hashes.delete({key_hash})], condition=OwnedKeysRecord.pk.exists()
        )
    except UpdateError as error:
        if not refused_by_condition(error):
            raise
    record.revoked = True
    return record
