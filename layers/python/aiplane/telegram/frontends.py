"""Telegram frontends: CRUD with the bot token in Secrets Manager. Responses never carry the
token: it is always rendered as the mask `***-***`.

A frontend belongs to its `userId` (`aiplane.identity.ownership`); only an admin (manage on
`server`) may set a userId other than the caller's own."""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiplane.clock import now_iso
from aiplane.data import aws
from aiplane.data.models import get_or_404
from aiplane.data.pagination import parse_limit, timestamp_cursor
from aiplane.errors import ValidationError
from aiplane.identity import ownership
from aiplane.identity.access import EDIT, MANAGE, SERVER, VIEW, require_permission
from aiplane.identity.principal import Principal
from aiplane.settings import get_settings
from aiplane.telegram.models import ALL_FRONTENDS, TelegramFrontendRecord, user_key

MASK = "***-***"
STATUSES = ("active", "paused")  # what PUT may ask for; the poller sets pending/active/error (aiplane.telegram.poller)
# BotFather tokens: "<bot id>:<secret>", e.g. 123456789:AAH...; anything else cannot work.
_BOT_TOKEN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")


def secret_name(frontend_id: str) -> str:
    return get_settings().resource(f"telegram-{frontend_id}-bot-token")


def view(record: TelegramFrontendRecord) -> dict[str, Any]:
    return {
        "id": record.frontend_id,
        "userId": record.user_id,
        "description": record.description,
        "botToken": MASK,
        "chatChain": record.chat_chain,
        "syncInterval": int(record.sync_interval),
        "lastOffset": int(record.last_offset),
        "status": record.status,
        "lastHeartbeat": record.last_heartbeat,
        "lastError": record.last_error,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
    }


def _token(raw: str | None) -> str:
    token = (raw or "").strip()
    if not _BOT_TOKEN.match(token):
        raise ValidationError("botToken must be a Telegram bot token (<bot id>:<secret>)", param="botToken")
    return token


def _text(raw: str | None, param: str, *, required: bool) -> str | None:
    if raw is None and not required:
        return None
    text = (raw or "").strip()
    if required and not text:
        raise ValidationError(f"{param} is required", param=param)
    return text


def _non_negative(raw: int | None, param: str, *, minimum: int = 0) -> int | None:
    if raw is not None and raw < minimum:
        raise ValidationError(f"{param} must be >= {minimum}", param=param)
    return raw


def _status(raw: str | None) -> str | None:
    if raw is not None and raw not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}", param="status")
    return raw


def get_frontend(frontend_id: str, principal: Principal | None = None, needed: str = VIEW) -> TelegramFrontendRecord:
    record = get_or_404(
        TelegramFrontendRecord, f"TELEGRAM#{frontend_id}", "META", missing=f"telegram frontend {frontend_id} not found"
    )
    ownership.require(principal, needed, ownership.TELEGRAM, frontend_id, record.user_id)
    return record


def frontend_owner(frontend_id: str) -> str | None:
    return get_frontend(frontend_id).user_id


def _may_assign(principal: Principal | None, user_id: str | None) -> None:
    if principal is not None and user_id is not None and user_id != principal.id:
        require_permission(principal, MANAGE, SERVER)


def create_frontend(
    *,
    user_id: str,
    bot_token: str | None,
    chat_chain: str | None,
    description: str | None,
    sync_interval: int | None,
    last_offset: int | None,
    principal: Principal | None = None,
) -> TelegramFrontendRecord:
    _may_assign(principal, user_id)
    token = _token(bot_token)
    chain = _text(chat_chain, "chatChain", required=True)
    sync_interval = _non_negative(sync_interval, "syncInterval", minimum=1)
    last_offset = _non_negative(last_offset, "lastOffset")
    frontend_id, now = str(uuid.uuid4()), now_iso()
    name = secret_name(frontend_id)
    secrets = aws.client("secretsmanager")
    secrets.create_secret(
        Name=name, SecretString=token, Description=f"aiplane telegram frontend {frontend_id} bot token"
    )
    given: dict[str, Any] = {
        name: value
        for name, value in (("sync_interval", sync_interval), ("last_offset", last_offset))
        if value is not None
    }
    record = TelegramFrontendRecord(
        f"TELEGRAM#{frontend_id}",
        "META",
        gsi1sk=f"{now}#{frontend_id}",
        gsi2pk=user_key(user_id),
        gsi2sk=f"{now}#{frontend_id}",
        frontend_id=frontend_id,
        user_id=user_id,
        description=_text(description, "description", required=False) or "",
        chat_chain=chain,
        secret_name=name,
        created_at=now,
        updated_at=now,
        **given,
    )
    try:
        record.save(condition=TelegramFrontendRecord.pk.does_not_exist())
    except Exception:
        secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)  # no orphaned token
        raise
    return record


def update_frontend(
    frontend_id: str,
    *,
    user_id: str | None,
    bot_token: str | None,
    chat_chain: str | None,
    description: str | None,
    sync_interval: int | None,
    last_offset: int | None,
    status: str | None,
    principal: Principal | None = None,
) -> TelegramFrontendRecord:
    """Absent fields keep their value; a botToken equal to the mask keeps the stored token."""
    record = get_frontend(frontend_id, principal, EDIT)
    token = None if bot_token in (None, MASK) else _token(bot_token)
    chain = _text(chat_chain, "chatChain", required=chat_chain is not None)
    user_id = _text(user_id, "userId", required=user_id is not None)
    if user_id != record.user_id:
        _may_assign(principal, user_id)
    description = _text(description, "description", required=False)
    sync_interval = _non_negative(sync_interval, "syncInterval", minimum=1)
    last_offset = _non_negative(last_offset, "lastOffset")
    status = _status(status)
    # Only a successful poll makes a frontend active: resuming, or a new token, waits for one.
    resumed = status == "active" and record.status == "paused"
    retokened = token is not None and status != "paused" and (status == "active" or record.status != "paused")
    if status == "active":
        status = None
    if resumed or retokened:
        status = "pending"
    if token is not None:
        aws.client("secretsmanager").put_secret_value(SecretId=record.secret_name, SecretString=token)
    T = TelegramFrontendRecord
    changes = [
        (T.chat_chain, chain),
        (T.description, description),
        (T.sync_interval, sync_interval),
        (T.last_offset, last_offset),
        (T.status, status),
        (T.user_id, user_id),
        (T.gsi2pk, user_key(user_id) if user_id else None),
    ]
    actions = [attribute.set(value) for attribute, value in changes if value is not None]  # type: ignore[attr-defined]
    record.update(actions=[*actions, T.updated_at.set(now_iso())], condition=T.pk.exists())
    return record


def delete_frontend(frontend_id: str, principal: Principal | None = None) -> None:
    record = get_frontend(frontend_id, principal, MANAGE)
    record.delete()
    secrets = aws.client("secretsmanager")
    try:
        secrets.delete_secret(SecretId=record.secret_name, ForceDeleteWithoutRecovery=True)
    except secrets.exceptions.ResourceNotFoundException:
        pass


def _visible(principal: Principal | None, records: Any, page_size: int) -> list[TelegramFrontendRecord]:
    return ownership.visible_page(
        principal, ownership.TELEGRAM, records, lambda r: (r.frontend_id, r.user_id), page_size
    )


def list_frontends(
    *, limit: str | None, cursor: str | None, principal: Principal | None = None
) -> list[TelegramFrontendRecord]:
    """Oldest first, after the RFC3339 `cursor` (a createdAt); only those the principal may view."""
    page_size = parse_limit(limit)
    after = timestamp_cursor(cursor)
    condition = TelegramFrontendRecord.gsi1sk > f"{after}#\uffff" if after else None
    records = TelegramFrontendRecord.by_creation.query(
        ALL_FRONTENDS, range_key_condition=condition, page_size=page_size
    )
    return _visible(principal, records, page_size)


def list_frontends_of(
    user_id: str, *, limit: str | None, cursor: str | None, principal: Principal | None = None
) -> list[TelegramFrontendRecord]:
    page_size = parse_limit(limit)
    after = timestamp_cursor(cursor)
    condition = TelegramFrontendRecord.gsi2sk > f"{after}#\uffff" if after else None
    records = TelegramFrontendRecord.by_user.query(
        user_key(user_id), range_key_condition=condition, page_size=page_size
    )
    return _visible(principal, records, page_size)
