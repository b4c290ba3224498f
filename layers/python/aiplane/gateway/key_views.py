"""How virtual keys, a user's gateway limits and spend logs answer over HTTP: LiteLLM's shapes.
Kept apart from the services (`virtual_keys.py`, `spend.py`) so those stay free of response formats.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiplane.data.models import ApiKeyRecord
from aiplane.gateway.limits import LIMIT_FIELDS, Limits, Scope
from aiplane.gateway.spend import scope_spend
from aiplane.gateway.virtual_keys import key_hash_of, key_scope
from aiplane.identity.api_keys import IssuedKey, is_active
from aiplane.identity.models import SpendLogRecord, UserRecord
from aiplane.identity.users import rfc3339


def key_view(record: ApiKeyRecord) -> dict[str, Any]:
    """A key's limits and its spend in the current budget period."""
    now = time.time()
    scope = key_scope(record)
    reset_at = scope.budget_reset_at(now)
    return {
        "token": key_hash_of(record),
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


def generated_key_view(issued: IssuedKey) -> dict[str, Any]:
    """The new key itself (shown this once) with its view."""
    return {"key": issued.api_key, **key_view(issued.record)}


def key_info_view(record: ApiKeyRecord) -> dict[str, Any]:
    """LiteLLM's `{key, info}`."""
    return {"key": key_hash_of(record), "info": key_view(record)}


def user_limits_view(record: UserRecord) -> dict[str, Any]:
    """A user's gateway limits and their spend in the current budget period."""
    scope = Scope(f"user#{record.user_id}", Limits.of(record), record.created_at.timestamp())
    return {
        "user_id": record.user_id,
        **{name: getattr(record, name) for name in LIMIT_FIELDS},
        "spend": scope_spend(scope.name, scope.budget_sk(time.time())),
    }


def log_view(record: SpendLogRecord) -> dict[str, Any]:
    """LiteLLM's spend-log shape (`api_key` is the key's hash, as LiteLLM stores it)."""
    return {
        "request_id": record.request_id,
        "call_type": "chat_completion",
        "api_key": record.key_hash or "",
        "spend": float(record.spend),
        "total_tokens": int(record.prompt_tokens + record.completion_tokens),
        "prompt_tokens": int(record.prompt_tokens),
        "completion_tokens": int(record.completion_tokens),
        "startTime": rfc3339(record.started_at),
        "endTime": rfc3339(record.ended_at),
        "model": record.model,
        "user": record.user_id,
        "status": record.status,
        "unpriced": record.unpriced,
    }
