"""The Telegram bot poller: each scheduled tick polls the frontends that are due.

Per frontend (not `paused`, its `syncInterval` passed since its last poll): read the bot token from
Secrets Manager, `getUpdates` from the stored `lastOffset`, run the frontend's chat chain on each
text message (as the frontend's owner) and answer with `sendMessage`. `lastOffset` (the next
update id to ask for) advances past an update only once it is answered, so an update is never
lost; a poll lease on the record keeps two pollers from answering the same update.

Status: `pending` until the first successful `getUpdates`, `active` while polls succeed, `error`
with `lastError` when the Bot API fails (HTTP error, `ok: false`, unreachable; the update is asked
for again on the next poll). A chat chain that fails is answered with an apology, recorded in
`lastError` and passed over (retrying a broken chain would hold up every later message).
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import UpdateError

from aiplane.chains import runner
from aiplane.clock import now, now_iso
from aiplane.data import aws
from aiplane.data.conditions import refused_by_condition
from aiplane.errors import AiplaneError
from aiplane.identity import ownership
from aiplane.observability import logger
from aiplane.telegram import bot_api
from aiplane.telegram.models import ALL_FRONTENDS, TelegramFrontendRecord

PENDING, ACTIVE, ERROR, PAUSED = "pending", "active", "error", "paused"
UPDATES_PER_POLL = 20
POLL_LEASE_S = 240  # longer than one frontend's poll (20 chain runs); a crashed poller's lease lapses
SORRY = "Sorry, I could not answer that."

T = TelegramFrontendRecord


class _Overtaken(Exception):
    """The record changed under the poll (deleted, paused, lastOffset set by PUT): stop this poll."""


def _update(record: TelegramFrontendRecord, actions: list[Any], condition: Any = None) -> None:
    try:
        record.update(actions=actions, condition=T.pk.exists() if condition is None else T.pk.exists() & condition)
    except UpdateError as error:
        if refused_by_condition(error):
            raise _Overtaken() from None
        raise


def _epoch() -> float:
    return now().timestamp()


def _lease(record: TelegramFrontendRecord) -> bool:
    moment = _epoch()
    try:
        _update(
            record,
            [T.poll_lease_until.set(moment + POLL_LEASE_S), T.polled_at.set(moment)],
            (T.poll_lease_until.does_not_exist() | (T.poll_lease_until < moment)) & (T.status != PAUSED),
        )
    except _Overtaken:
        return False
    return True


def _finish(record: TelegramFrontendRecord, status: str, error: str | None) -> str:
    actions = [T.status.set(status), T.poll_lease_until.set(0)]
    actions.append(T.last_error.set(error) if error else T.last_error.remove())
    if status == ACTIVE:
        actions.append(T.last_heartbeat.set(now_iso()))
    try:
        _update(record, actions, T.status != PAUSED)
    except _Overtaken:
        _release(record)
        return "overtaken"
    return status


def _release(record: TelegramFrontendRecord) -> None:
    try:
        _update(record, [T.poll_lease_until.set(0)])
    except _Overtaken:
        pass  # deleted meanwhile


def chain_reply(record: TelegramFrontendRecord, text: str) -> str:
    """The frontend's chat chain run on one user message; the assistant's answer."""
    input_value = {"messages": [{"role": "user", "content": text}], "model": "", "provider": ""}
    output, _, _ = runner.run_stored(
        record.chat_chain, input_value, "chat_history", ownership.acting_as(record.user_id)
    )
    messages = output.get("messages") if isinstance(output, dict) else None
    if isinstance(messages, list):
        return next(
            (
                str(m.get("content") or "")
                for m in reversed(messages)
                if isinstance(m, dict) and m.get("role") == "assistant"
            ),
            "",
        )
    return str(output)


def _answer(record: TelegramFrontendRecord, token: str, update: dict[str, Any]) -> str | None:
    """Answers a text message (other updates need no answer); the chain's failure, if it failed."""
    message = update.get("message") or {}
    text, chat_id = message.get("text"), (message.get("chat") or {}).get("id")
    if not isinstance(text, str) or chat_id is None:
        return None
    problem = None
    try:
        reply = chain_reply(record, text)
    except AiplaneError as error:
        reply, problem = SORRY, f"chat chain {record.chat_chain!r} failed on update {update['update_id']}: {error}"
    bot_api.send_message(token, chat_id, reply, reply_to=message.get("message_id"))
    return problem


def poll_frontend(record: TelegramFrontendRecord) -> str:
    """One poll; the frontend's status after it (or `busy`/`overtaken` when another poll or a change came first)."""
    if not _lease(record):
        return "busy"
    offset, problem = int(record.last_offset), None
    try:
        token = aws.client("secretsmanager").get_secret_value(SecretId=record.secret_name)["SecretString"]
        for update in sorted(bot_api.get_updates(token, offset, UPDATES_PER_POLL), key=lambda u: int(u["update_id"])):
            update_id = int(update["update_id"])
            if update_id < offset:
                continue  # confirmed already (a Bot API that answers it anyway)
            problem = _answer(record, token, update) or problem
            _update(record, [T.last_offset.set(update_id + 1)], T.last_offset == offset)
            offset = update_id + 1
    except bot_api.BotApiError as error:
        return _finish(record, ERROR, str(error))
    except ClientError as error:  # the token's secret is gone or unreadable
        return _finish(record, ERROR, f"bot token: {error.response['Error']['Code']}")
    except _Overtaken:
        _release(record)
        return "overtaken"
    return _finish(record, ACTIVE, problem)


def poll_due(deadline: float | None = None) -> dict[str, str]:
    """Polls every frontend that is due, until `deadline` (time.monotonic()); the status of each one polled."""
    polled: dict[str, str] = {}
    moment = _epoch()
    for record in T.by_creation.query(ALL_FRONTENDS):
        if deadline is not None and time.monotonic() >= deadline:
            break  # the rest wait for the next tick
        if record.status == PAUSED or moment - float(record.polled_at) < float(record.sync_interval):
            continue
        polled[record.frontend_id] = status = poll_frontend(record)
        if status == ERROR:
            logger.warning("telegram poll failed", extra={"frontend": record.frontend_id})
    return polled
