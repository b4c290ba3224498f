"""Audit trail of authentication attempts (success and failure). Never holds a secret: no
password, token or key, only the key's displayable prefix.

The events form an `aiplane.audit_chain` chain (sharded, anchored in signed digests), so a writer
of the identity table cannot rewrite or remove them unnoticed; events expire after RETENTION.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiplane import audit_chain
from aiplane.audit_chain import Chain
from aiplane.identity.models import AuthChainHeadRecord, AuthEventRecord
from aiplane.observability import logger

RETENTION = timedelta(days=90)
SHARDS = 8
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _hashed_fields(record: AuthEventRecord) -> dict[str, Any]:
    return {
        "sequence_num": int(record.sequence_num),
        "prev_hash": record.prev_hash,
        "at": record.at.strftime(_TIME_FORMAT),
        "action": record.action,
        "outcome": record.outcome,
        "family": record.family,
        "user_id": record.user_id,
        "email": record.email,
        "source_ip": record.source_ip,
        "credential": record.credential,
        "key_prefix": record.key_prefix,
        "reason": record.reason,
    }


CHAIN = Chain(
    name="identity",
    partition_prefix="AUTHCHAIN#",
    shards=SHARDS,
    entry=AuthEventRecord,
    head=AuthChainHeadRecord,
    hashed_fields=_hashed_fields,
    retention=RETENTION,
)
SUCCESS = "success"
FAILURE = "failure"


def day_key(outcome: str, day: datetime) -> str:
    """gsi2: one day's auth events, its failures in their own partition (the alerts read only those)."""
    return f"{'AUTHFAIL' if outcome == FAILURE else 'AUTHLOG'}#{day:%Y-%m-%d}"


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
    def build(sequence: int) -> AuthEventRecord:
        now = datetime.now(UTC)
        at = now.strftime(_TIME_FORMAT)
        return AuthEventRecord(
            gsi1pk=f"AUTHLOG#{user_id}" if user_id else None,
            gsi1sk=at if user_id else None,
            gsi2pk=day_key(outcome, now),
            gsi2sk=f"{at}#{sequence:012d}",
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

    audit_chain.append(CHAIN, build)
    logger.info(
        "auth event",
        extra={"action": action, "outcome": outcome, "family": family, "user_id": user_id, "reason": reason},
    )


def auth_events_of(user_id: str, *, limit: int = 1000) -> list[AuthEventRecord]:
    """A user's most recent auth events, newest first."""
    return list(AuthEventRecord.by_user.query(f"AUTHLOG#{user_id}", scan_index_forward=False, limit=limit))
