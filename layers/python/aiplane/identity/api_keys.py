"""API keys: generated with enough entropy that a plain SHA-256 is a safe stored form, and
looked up by that hash (a GetItem, no Scan)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pynamodb.exceptions import DoesNotExist

from aiplane.data.models import ApiKeyRecord

KEY_PREFIX = "aip_"
DISPLAY_PREFIX_LENGTH = 12
# A key of this scope authenticates one GPU contract's agent on the agent routes only.
GPU_AGENT_SCOPE = "gpu-agent"


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def record_key(api_key: str) -> str:
    return f"APIKEY#{hash_key(api_key)}"


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    api_key: str  # shown once, never stored
    record: ApiKeyRecord


def issue_api_key(
    owner_id: str, name: str, *, is_admin: bool = False, expires_at: datetime | None = None, rate_limit: int | None = None,
    scope: str | None = None, contract_id: str | None = None,
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
    )
    # The hash is the key: a collision would be a generator failure, so refuse to overwrite.
    record.save(condition=ApiKeyRecord.pk.does_not_exist())
    return IssuedKey(key_id=record.key_id, api_key=api_key, record=record)


def find_active_key(api_key: str) -> ApiKeyRecord | None:
    """The key's record if it exists, is not revoked and has not expired."""
    try:
        record = ApiKeyRecord.get(record_key(api_key), "META")
    except DoesNotExist:
        return None
    if record.revoked:
        return None
    # TTL deletes lazily (and never in moto): expiry is checked on read.
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        return None
    return record


def keys_of(owner_id: str) -> list[ApiKeyRecord]:
    """A user's keys, oldest first (revoked and expired ones included)."""
    return list(ApiKeyRecord.by_owner.query(f"OWNER#{owner_id}"))


def revoke_api_key(api_key_hash: str) -> None:
    ApiKeyRecord(f"APIKEY#{api_key_hash}", "META").update(actions=[ApiKeyRecord.revoked.set(True)])
