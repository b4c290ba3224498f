"""Data access for task chains, chain runs, remote hooks and chats (the runtime table).

Key layout (pk / sk; gsi1 lists by creation time, RFC3339Nano, so it doubles as the cursor):
- TASKCHAIN#<id> / META        gsi1: TASKCHAINS / <createdAt>#<id>
- CHAINRUN#<run id> / META     captured state units of one run and its step counter (TTL one day)
                               gsi1: CHAINRUNS / <first attempt>#<run id>
- HOOK#<id> / META             gsi1: HOOKS / <createdAt>#<id>
- HOOKNAME#<name> / META       claims a hook name (written in one transaction with the hook)
- CHAT#<id> / META             gsi1: CHATS / <createdAt>#<id>
- CHAT#<id> / MSG#<sentAt>#<n> one message of a chat's history
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from pynamodb.connection import Connection
from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from aiplane import outbound
from aiplane.data.models import Gsi1, table_name
from aiplane.errors import ConflictError, NotFoundError, ValidationError
from aiplane.settings import get_settings
from aiplane_shared import resources

RUN_RECORD_TTL_S = 24 * 3600
CHAIN_RUNS = "CHAINRUNS"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def now_rfc3339_nano() -> str:
    """UTC with nanosecond digits (Python has microseconds; the last three digits are zero)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def parse_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    if not _RFC3339.match(cursor):
        raise ValidationError("cursor must be an RFC3339Nano timestamp", param="cursor")
    return cursor


class _RuntimeModel(Model):
    class Meta:
        table_name = table_name(resources.RUNTIME_TABLE)
        region = get_settings().region

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class TaskChainRecord(_RuntimeModel):
    gsi1pk = UnicodeAttribute(default="TASKCHAINS")
    gsi1sk = UnicodeAttribute()
    by_created = Gsi1()
    chain_id = UnicodeAttribute()
    definition = UnicodeAttribute()  # the chain as JSON
    state_machine_arn = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class ChainRunRecord(_RuntimeModel):
    gsi1pk = UnicodeAttribute(null=True)  # CHAINRUNS: lists runs for /activity/stateful-requests
    gsi1sk = UnicodeAttribute(null=True)  # the first attempt's time, then the run id
    by_created = Gsi1()
    units = ListAttribute(of=UnicodeAttribute, null=True)  # CapturedStateUnit JSON, one per attempt
    steps = NumberAttribute(default=0)
    expires_at_epoch = NumberAttribute()


class RemoteHookRecord(_RuntimeModel):
    gsi1pk = UnicodeAttribute(default="HOOKS")
    gsi1sk = UnicodeAttribute()
    by_created = Gsi1()
    hook_id = UnicodeAttribute()
    name = UnicodeAttribute()
    body = UnicodeAttribute()  # the hook as JSON


class HookNameRecord(_RuntimeModel):
    hook_id = UnicodeAttribute()


class ChatRecord(_RuntimeModel):
    gsi1pk = UnicodeAttribute(default="CHATS")
    gsi1sk = UnicodeAttribute()
    by_created = Gsi1()
    chat_id = UnicodeAttribute()
    subject = UnicodeAttribute(default="")
    created_at = UnicodeAttribute()


class ChatMessageRecord(_RuntimeModel):
    message = UnicodeAttribute()  # the message as JSON
    sent_at = UnicodeAttribute()


def _transaction() -> TransactWrite:
    return TransactWrite(connection=Connection(region=get_settings().region))


def _page_by_created(model: Any, partition: str, limit: int, cursor: str | None) -> list[Any]:
    condition = Gsi1.gsi1sk > f"{cursor}#\uffff" if cursor else None
    return list(model.by_created.query(partition, range_key_condition=condition, limit=limit))


# ---- task chains -------------------------------------------------------------------------------

def save_task_chain(chain_id: str, definition: dict[str, Any], state_machine_arn: str, *, create: bool) -> dict[str, Any]:
    now = now_rfc3339_nano()
    key = f"TASKCHAIN#{chain_id}"
    if create:
        record = TaskChainRecord(key, "META", gsi1sk=f"{now}#{chain_id}", chain_id=chain_id,
                                 definition=json.dumps(definition), state_machine_arn=state_machine_arn,
                                 created_at=now, updated_at=now)
        try:
            record.save(condition=TaskChainRecord.pk.does_not_exist())
        except Exception as error:
            if "ConditionalCheckFailed" in str(error):
                raise ConflictError(f"task chain {chain_id!r} already exists") from None
            raise
        return definition
    record = get_task_chain_record(chain_id)
    record.update(actions=[TaskChainRecord.definition.set(json.dumps(definition)),
                           TaskChainRecord.state_machine_arn.set(state_machine_arn),
                           TaskChainRecord.updated_at.set(now)],
                  condition=TaskChainRecord.pk.exists())
    return definition


def get_task_chain_record(chain_id: str) -> TaskChainRecord:
    try:
        return TaskChainRecord.get(f"TASKCHAIN#{chain_id}", "META")
    except DoesNotExist:
        raise NotFoundError(f"task chain {chain_id!r} not found") from None


def task_chain_exists(chain_id: str) -> bool:
    try:
        get_task_chain_record(chain_id)
    except NotFoundError:
        return False
    return True


def list_task_chains(limit: int, cursor: str | None) -> list[dict[str, Any]]:
    return [json.loads(record.definition) for record in _page_by_created(TaskChainRecord, "TASKCHAINS", limit, cursor)]


def delete_task_chain(chain_id: str) -> TaskChainRecord:
    record = get_task_chain_record(chain_id)
    record.delete()
    return record


# ---- chain runs ----------------------------------------------------------------------------------

def record_attempt(run_id: str, unit: dict[str, Any]) -> int:
    """Append one attempt's CapturedStateUnit and count the step; returns the steps so far."""
    record = ChainRunRecord(f"CHAINRUN#{run_id}", "META")
    record.update(actions=[
        ChainRunRecord.units.set((ChainRunRecord.units | []).append([json.dumps(unit)])),
        ChainRunRecord.steps.add(1),
        ChainRunRecord.expires_at_epoch.set(int(time.time()) + RUN_RECORD_TTL_S),
        ChainRunRecord.gsi1pk.set(CHAIN_RUNS),
        ChainRunRecord.gsi1sk.set(ChainRunRecord.gsi1sk | f"{now_rfc3339_nano()}#{run_id}"),
    ])
    return int(record.steps)


def recent_runs(limit: int) -> list[dict[str, Any]]:
    """The latest chain runs, newest first, with their step counts (expired ones left out)."""
    now = int(time.time())
    runs = []
    for record in ChainRunRecord.by_created.query(CHAIN_RUNS, scan_index_forward=False, limit=limit):
        if record.expires_at_epoch > now:
            started_at, run_id = record.gsi1sk.rsplit("#", 1)
            runs.append({"id": run_id, "steps": int(record.steps), "startedAt": started_at})
    return runs


def chain_run_exists(run_id: str) -> bool:
    try:
        record = ChainRunRecord.get(f"CHAINRUN#{run_id}", "META")
    except DoesNotExist:
        return False
    return record.expires_at_epoch > int(time.time())


def captured_units(run_id: str) -> list[dict[str, Any]]:
    try:
        record = ChainRunRecord.get(f"CHAINRUN#{run_id}", "META", consistent_read=True)
    except DoesNotExist:
        return []
    return [json.loads(unit) for unit in record.units or []]


# ---- remote hooks --------------------------------------------------------------------------------

def create_hook(hook: dict[str, Any]) -> dict[str, Any]:
    outbound.check_url(hook["endpointUrl"], outbound.HOOKS, param="endpointUrl")
    now = now_rfc3339_nano()
    hook = {**hook, "id": hook.get("id") or str(uuid.uuid4()), "createdAt": now, "updatedAt": now}
    record = RemoteHookRecord(f"HOOK#{hook['id']}", "META", gsi1sk=f"{now}#{hook['id']}", hook_id=hook["id"],
                              name=hook["name"], body=json.dumps(hook))
    claim = HookNameRecord(f"HOOKNAME#{hook['name']}", "META", hook_id=hook["id"])
    try:
        with _transaction() as transaction:
            transaction.save(record, condition=RemoteHookRecord.pk.does_not_exist())
            transaction.save(claim, condition=HookNameRecord.pk.does_not_exist())
    except TransactWriteError:
        raise ConflictError(f"a remote hook named {hook['name']!r} (or with id {hook['id']!r}) exists", param="name") from None
    return hook


def get_hook(hook_id: str) -> dict[str, Any]:
    try:
        return json.loads(RemoteHookRecord.get(f"HOOK#{hook_id}", "META").body)
    except DoesNotExist:
        raise NotFoundError(f"remote hook {hook_id!r} not found") from None


def find_hook_by_name(name: str) -> dict[str, Any] | None:
    try:
        claim = HookNameRecord.get(f"HOOKNAME#{name}", "META")
    except DoesNotExist:
        return None
    try:
        return get_hook(claim.hook_id)
    except NotFoundError:
        return None


def get_hook_by_name(name: str) -> dict[str, Any]:
    hook = find_hook_by_name(name)
    if hook is None:
        raise NotFoundError(f"remote hook named {name!r} not found")
    return hook


def update_hook(hook_id: str, hook: dict[str, Any]) -> dict[str, Any]:
    outbound.check_url(hook["endpointUrl"], outbound.HOOKS, param="endpointUrl")
    current = get_hook(hook_id)
    updated = {**hook, "id": hook_id, "createdAt": current["createdAt"], "updatedAt": now_rfc3339_nano()}
    record = RemoteHookRecord(f"HOOK#{hook_id}", "META", gsi1sk=f"{current['createdAt']}#{hook_id}", hook_id=hook_id,
                              name=updated["name"], body=json.dumps(updated))
    try:
        with _transaction() as transaction:
            transaction.save(record, condition=RemoteHookRecord.pk.exists())
            if updated["name"] != current["name"]:
                transaction.save(HookNameRecord(f"HOOKNAME#{updated['name']}", "META", hook_id=hook_id),
                                 condition=HookNameRecord.pk.does_not_exist())
                transaction.delete(HookNameRecord(f"HOOKNAME#{current['name']}", "META"))
    except TransactWriteError:
        raise ConflictError(f"a remote hook named {updated['name']!r} exists", param="name") from None
    return updated


def delete_hook(hook_id: str) -> None:
    current = get_hook(hook_id)
    with _transaction() as transaction:
        transaction.delete(RemoteHookRecord(f"HOOK#{hook_id}", "META"))
        transaction.delete(HookNameRecord(f"HOOKNAME#{current['name']}", "META"))


def list_hooks(limit: int, cursor: str | None) -> list[dict[str, Any]]:
    return [json.loads(record.body) for record in _page_by_created(RemoteHookRecord, "HOOKS", limit, cursor)]


def list_hook_names() -> list[str]:
    names, cursor = [], None
    while True:
        page = list_hooks(1000, cursor)
        names += [hook["name"] for hook in page]
        if len(page) < 1000:
            return names
        cursor = page[-1]["createdAt"]


# ---- chats ---------------------------------------------------------------------------------------

def create_chat(subject: str) -> dict[str, Any]:
    chat_id, now = str(uuid.uuid4()), now_rfc3339_nano()
    ChatRecord(f"CHAT#{chat_id}", "META", gsi1sk=f"{now}#{chat_id}", chat_id=chat_id, subject=subject,
               created_at=now).save()
    return {"id": chat_id, "subject": subject, "createdAt": now}


def get_chat(chat_id: str) -> dict[str, Any]:
    try:
        record = ChatRecord.get(f"CHAT#{chat_id}", "META")
    except DoesNotExist:
        raise NotFoundError(f"chat {chat_id!r} not found") from None
    return {"id": record.chat_id, "subject": record.subject, "createdAt": record.created_at}


def list_chats(limit: int, cursor: str | None) -> list[dict[str, Any]]:
    return [{"id": r.chat_id, "subject": r.subject, "createdAt": r.created_at}
            for r in _page_by_created(ChatRecord, "CHATS", limit, cursor)]


def chat_messages(chat_id: str) -> list[dict[str, Any]]:
    records = ChatMessageRecord.query(f"CHAT#{chat_id}", ChatMessageRecord.sk.startswith("MSG#"))
    return [{**json.loads(record.message), "sentAt": record.sent_at} for record in records]


def append_chat_messages(chat_id: str, messages: list[dict[str, Any]]) -> None:
    with _transaction() as transaction:
        transaction.condition_check(ChatRecord, f"CHAT#{chat_id}", "META", condition=ChatRecord.pk.exists())
        for number, message in enumerate(messages):
            sent_at = now_rfc3339_nano()
            clean = {key: value for key, value in message.items() if key != "sentAt"}
            transaction.save(ChatMessageRecord(f"CHAT#{chat_id}", f"MSG#{sent_at}#{number:04d}",
                                               message=json.dumps(clean), sent_at=sent_at))
