"""Audit trail of authentication attempts (success and failure). Never holds a secret: no
password, token or key, only the key's displayable prefix."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from aiplane.identity.models import AuthEventRecord
from aiplane.observability import logger

RETENTION = timedelta(days=90)
SUCCESS = "success"
FAILURE = "failure"


def record_auth_event(
    action: str,
    outcome: str,
    *,
    family: str,
    user_id: str | None = None,
    email: str | None = None,
    source_ip: str | None = None,
    credential: str | None = None,
    key_prefix: str | None = None,
    reason: str | None = None,
) -> None:
    now = datetime.now(UTC)
    at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    record = AuthEventRecord(
        f"AUTHLOG#{now:%Y-%m-%d}",
        f"{at}#{uuid.uuid4()}",
        gsi1pk=f"AUTHLOG#{user_id}" if user_id else None,
        gsi1sk=at if user_id else None,
        action=action,
        outcome=outcome,
        family=family,
        user_id=user_id,
        email=email,
        source_ip=source_ip,
        credential=credential,
        key_prefix=key_prefix,
        reason=reason,
        at=now,
        expires_at_epoch=int((now + RETENTION).timestamp()),
    )
    record.save()
    logger.info("auth event", extra={"action": action, "outcome": outcome, "family": family, "user_id": user_id, "reason": reason})


def auth_events_of(user_id: str, *, limit: int = 1000) -> list[AuthEventRecord]:
    """A user's most recent auth events, newest first."""
    return list(AuthEventRecord.by_user.query(f"AUTHLOG#{user_id}", scan_index_forward=False, limit=limit))
