"""A short in-process memory of verified API keys, so the auth path does not read DynamoDB on
every request (the key record and its owner are two GetItems).

An entry is trusted for `key_cache_s` (1 s by default): a key revoked, or a user deleted, in another
container stops working within that time. Revocations in this process drop the entry at once. The
gateway's admission transaction re-checks the key and its owner in the same DynamoDB call that takes
its limits (`aiplane.gateway.limits`), and then `confirm`s the entry: a key busy on the gateway is
never read again, yet a revocation is refused by its very next admission.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from aiplane import clock
from aiplane.data.models import ApiKeyRecord
from aiplane.identity.models import UserRecord
from aiplane.settings import get_settings

MAX_ENTRIES = 10_000  # a container sees few keys; past this the memory starts over


class VerifiedKey(NamedTuple):
    key_hash: str
    record: ApiKeyRecord
    owner: UserRecord | None  # None: an admin key or one of the bootstrap admin's (no user record checked)


_lock = threading.Lock()
_by_hash: dict[str, tuple[float, VerifiedKey]] = {}
_hash_by_key_id: dict[str, str] = {}


def fresh(key_hash: str) -> VerifiedKey | None:
    """The entry if it was verified less than `key_cache_s` ago."""
    entry = _by_hash.get(key_hash)
    if entry is None or clock.monotonic() - entry[0] >= get_settings().key_cache_s:
        return None
    return entry[1]


def remember(verified: VerifiedKey) -> None:
    with _lock:
        if len(_by_hash) >= MAX_ENTRIES:
            _by_hash.clear()
            _hash_by_key_id.clear()
        _by_hash[verified.key_hash] = (clock.monotonic(), verified)
        _hash_by_key_id[verified.record.key_id] = verified.key_hash


def by_key_id(key_id: str) -> VerifiedKey | None:
    """The last verified metadata of a key (stale or not: the caller re-checks what it relies on)."""
    key_hash = _hash_by_key_id.get(key_id)
    entry = _by_hash.get(key_hash) if key_hash else None
    return entry[1] if entry else None


def confirm(key_hash: str) -> None:
    """A DynamoDB condition just proved the key active and its owner present: trust it afresh."""
    with _lock:
        entry = _by_hash.get(key_hash)
        if entry is not None:
            _by_hash[key_hash] = (clock.monotonic(), entry[1])


def forget(key_hash: str) -> None:
    with _lock:
        entry = _by_hash.pop(key_hash, None)
        if entry is not None:
            _hash_by_key_id.pop(entry[1].record.key_id, None)


def forget_owner(user_id: str) -> None:
    """The user was deleted or their families changed: their keys are verified again."""
    with _lock:
        stale = [key_hash for key_hash, (_, verified) in _by_hash.items() if verified.record.owner_id == user_id]
    for key_hash in stale:
        forget(key_hash)
