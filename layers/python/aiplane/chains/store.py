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
import time
import uuid
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from aiplane import outbound_policy
from aiplane.clock import now_rfc3339_nano
from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import Gsi1, get_or_404, get_or_none, string_list
from aiplane.data.pagination import timestamp_cursor
from aiplane.data.runtime_table import RuntimeItem
from aiplane.errors import ConflictError, NotFoundError
from aiplane.identity import ownership
from aiplane.identity.access import EDIT, MANAGE, VIEW
from aiplane.identity.principal import Principal
from aiplane.settings import get_settings

RUN_RECORD_TTL_S = 24 * 3600
CHAIN_RUNS = "CHAINRUNS"


def parse_cursor(cursor: str | None) -> str | None:
    """Chains keep nanosecond digits in their sort keys."""
    return timestamp_cursor(cursor, nano=True)


class TaskChainRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute(default="TASKCHAINS")
    gsi1sk = UnicodeAttribute()
    by_created = Gsi1()
    chain_id = UnicodeAttribute()
    definition = UnicodeAttribute()  # the chain as JSON
    state_machine_arn = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    owner_id = UnicodeAttribute(null=True)  # None: made before owners were recorded (the admin's)


class ChainRunRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute(null=True)  # CHAINRUNS: lists runs for /activity/stateful-requests
    gsi1sk = UnicodeAttribute(null=True)  # the first attempt's time, then the run id
    by_created = Gsi1()
    units = string_list(null=True)  # CapturedStateUnit JSON, one per attempt
    steps = NumberAttribute(default=0)
    expires_at_epoch = NumberAttribute()


class RemoteHookRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute(default="HOOKS")
    gsi1sk = UnicodeAttribute()
    by_created = Gsi1()
    hook_id = UnicodeAttribute()
    name = UnicodeAttribute()
    body = UnicodeAttribute()  # the hook as JSON
    owner_id = UnicodeAttribute(null=True)


class HookNameRecord(RuntimeItem):
    hook_id = UnicodeAttribute()


class ChatRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute(default="CHATS")
    gsi1sk = UnicodeAttribute()
    by_created = Gsi1()
    chat_id = UnicodeAttribute()
    subject = UnicodeAttribute(default="")
    created_at = UnicodeAttribute()
    owner_id = UnicodeAttribute(null=True)


class ChatMessageRecord(RuntimeItem):
    message = UnicodeAttribute()  # the message as JSON
    sent_at = UnicodeAttribute()


def _transaction() -> TransactWrite:
    return TransactWrite(connection=Connection(region=get_settings().region))


def _page_by_created(
    model: Any,
    partition: str,
    limit: int,
    cursor: str | None,
    principal: Principal | None = None,
    kind: str = "",
    key: Any = None,
) -> list[Any]:
    """A page oldest first after the cursor; with a principal, only the items it may view."""
    condition = Gsi1.gsi1sk > f"{cursor}#\uffff" if cursor else None
    if principal is None:
        return list(model.by_created.query(partition, range_key_condition=condition, limit=limit))
    return ownership.visible_page(
        principal, kind, model.by_created.query(partition, range_key_condition=condition), key, limit
    )


# ---- task chains -------------------------------------------------------------------------------


def save_task_chain(
    chain_id: str, definition: dict[str, Any], state_machine_arn: str, *, create: bool, owner_id: str | None = None
) -> dict[str, Any]:
    now = now_rfc3339_nano()
    key = f"TASKCHAIN#{chain_id}"
    if create:
        record = TaskChainRecord(
            key,
            "META",
            gsi1sk=f"{now}#{chain_id}",
            chain_id=chain_id,
            definition=json.dumps(definition),
            state_machine_arn=state_machine_arn,
            created_at=now,
            updated_at=now,
            owner_id=owner_id,
        )
        try:
            record.save(condition=TaskChainRecord.pk.does_not_exist())
        except Exception as error:
            if refused_by_condition(error):
                raise ConflictError(f"task chain {chain_id!r} already exists") from None
            raise
        return definition
    record = get_task_chain_record(chain_id)
    record.update(
        actions=[
            TaskChainRecord.definition.set(json.dumps(definition)),
            TaskChainRecord.state_machine_arn.set(state_machine_arn),
            TaskChainRecord.updated_at.set(now),
        ],
        condition=TaskChainRecord.pk.exists(),
    )
    return definition


def get_task_chain_record(chain_id: str, principal: Principal | None = None, needed: str = VIEW) -> TaskChainRecord:
    record = get_or_404(TaskChainRecord, f"TASKCHAIN#{chain_id}", "META", missing=f"task chain {chain_id!r} not found")
    ownership.require(principal, needed, ownership.CHAINS, chain_id, record.owner_id)
    return record


def task_chain_owner(chain_id: str) -> str | None:
    return get_task_chain_record(chain_id).owner_id


def task_chain_exists(chain_id: str) -> bool:
    try:
        get_task_chain_record(chain_id)
    except NotFoundError:
        return False
    return True


def list_task_chains(limit: int, cursor: str | None, principal: Principal | None = None) -> list[dict[str, Any]]:
    records = _page_by_created(
        TaskChainRecord,
        "TASKCHAINS",
        limit,
        cursor,
        principal,
        ownership.CHAINS,
        lambda record: (record.chain_id, record.owner_id),
    )
    return [json.loads(record.definition) for record in records]


def delete_task_chain(chain_id: str, principal: Principal | None = None) -> TaskChainRecord:
    record = get_task_chain_record(chain_id, principal, MANAGE)
    record.delete()
    return record


# ---- chain runs ----------------------------------------------------------------------------------


def record_attempt(run_id: str, unit: dict[str, Any]) -> int:
    """Append one attempt's CapturedStateUnit and count the step; returns the steps so far."""
    record = ChainRunRecord(f"CHAINRUN#{run_id}", "META")
    record.update(
        actions=[
            ChainRunRecord.units.set((ChainRunRecord.units | []).append([json.dumps(unit)])),
            ChainRunRecord.steps.add(1),
            ChainRunRecord.expires_at_epoch.set(int(time.time()) + RUN_RECORD_TTL_S),
            ChainRunRecord.gsi1pk.set(CHAIN_RUNS),
            ChainRunRecord.gsi1sk.set(ChainRunRecord.gsi1sk | f"{now_rfc3339_nano()}#{run_id}"),
        ]
    )
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
    record = get_or_none(ChainRunRecord, f"CHAINRUN#{run_id}", "META")
    return record is not None and record.expires_at_epoch > int(time.time())


def captured_units(run_id: str) -> list[dict[str, Any]]:
    record = get_or_none(ChainRunRecord, f"CHAINRUN#{run_id}", "META", consistent_read=True)
    return [json.loads(unit) for unit in record.units or []] if record is not None else []


# ---- remote hooks --------------------------------------------------------------------------------


def create_hook(hook: dict[str, Any], owner_id: str | None = None) -> dict[str, Any]:
    outbound_policy.check_url(hook["endpointUrl"], outbound_policy.HOOKS, param="endpointUrl")
    now = now_rfc3339_nano()
    hook = {**hook, "id": hook.get("id") or str(uuid.uuid4()), "createdAt": now, "updatedAt": now}
    record = RemoteHookRecord(
        f"HOOK#{hook['id']}",
        "META",
        gsi1sk=f"{now}#{hook['id']}",
        hook_id=hook["id"],
        name=hook["name"],
        body=json.dumps(hook),
        owner_id=owner_id,
    )
    claim = HookNameRecord(f"HOOKNAME#{hook['name']}", "META", hook_id=hook["id"])
    try:
        with _transaction() as transaction:
            transaction.save(record, condition=RemoteHookRecord.pk.does_not_exist())
            transaction.save(claim, condition=HookNameRecord.pk.does_not_exist())
    except TransactWriteError:
        raise ConflictError(
            f"a remote hook named {hook['name']!r} (or with id {hook['id']!r}) exists", param="name"
        ) from None
    return hook


def _hook_record(hook_id: str, principal: Principal | None = None, needed: str = VIEW) -> RemoteHookRecord:
    record = get_or_404(RemoteHookRecord, f"HOOK#{hook_id}", "META", missing=f"remote hook {hook_id!r} not found")
    ownership.require(principal, needed, ownership.HOOKS, hook_id, record.owner_id)
    return record


def get_hook(hook_id: str, principal: Principal | None = None) -> dict[str, Any]:
    return json.loads(_hook_record(hook_id, principal).body)


def hook_owner(hook_id: str) -> str | None:
    return _hook_record(hook_id).owner_id


def find_hook_by_name(name: str, principal: Principal | None = None) -> dict[str, Any] | None:
    claim = get_or_none(HookNameRecord, f"HOOKNAME#{name}", "META")
    if claim is None:
        return None
    try:
        return get_hook(claim.hook_id, principal)
    except NotFoundError:
        return None


def get_hook_by_name(name: str, principal: Principal | None = None) -> dict[str, Any]:
    hook = find_hook_by_name(name, principal)
    if hook is None:
        raise NotFoundError(f"remote hook named {name!r} not found")
    return hook


def update_hook(hook_id: str, hook: dict[str, Any], principal: Principal | None = None) -> dict[str, Any]:
    """Conditional on the name read, as group renames are: of two concurrent renames one wins,
    the other is a 409, and no name claim is left behind pointing at a hook of another name."""
    outbound_policy.check_url(hook["endpointUrl"], outbound_policy.HOOKS, param="endpointUrl")
    current_record = _hook_record(hook_id, principal, EDIT)
    current = json.loads(current_record.body)
    updated = {**hook, "id": hook_id, "createdAt": current["createdAt"], "updatedAt": now_rfc3339_nano()}
    record = RemoteHookRecord(
        f"HOOK#{hook_id}",
        "META",
        gsi1sk=f"{current['createdAt']}#{hook_id}",
        hook_id=hook_id,
        name=updated["name"],
        body=json.dumps(updated),
        owner_id=current_record.owner_id,
    )
    try:
        with _transaction() as transaction:
            transaction.save(record, condition=RemoteHookRecord.name == current["name"])
            if updated["name"] != current["name"]:
                transaction.save(
                    HookNameRecord(f"HOOKNAME#{updated['name']}", "META", hook_id=hook_id),
                    condition=HookNameRecord.pk.does_not_exist(),
                )
                transaction.delete(
                    HookNameRecord(f"HOOKNAME#{current['name']}", "META"), condition=HookNameRecord.hook_id == hook_id
                )
    except TransactWriteError:
        raise ConflictError(
            f"a remote hook named {updated['name']!r} exists, or the hook changed meanwhile", param="name"
        ) from None
    return updated


def delete_hook(hook_id: str, principal: Principal | None = None) -> None:
    current = json.loads(_hook_record(hook_id, principal, MANAGE).body)
    try:
        with _transaction() as transaction:
            transaction.delete(
                RemoteHookRecord(f"HOOK#{hook_id}", "META"), condition=RemoteHookRecord.name == current["name"]
            )
            transaction.delete(HookNameRecord(f"HOOKNAME#{current['name']}", "META"))
    except TransactWriteError:
        raise ConflictError(f"remote hook {hook_id!r} changed meanwhile; retry") from None


def list_hooks(limit: int, cursor: str | None, principal: Principal | None = None) -> list[dict[str, Any]]:
    records = _page_by_created(
        RemoteHookRecord,
        "HOOKS",
        limit,
        cursor,
        principal,
        ownership.HOOKS,
        lambda record: (record.hook_id, record.owner_id),
    )
    return [json.loads(record.body) for record in records]


def list_hook_names(principal: Principal | None = None) -> list[str]:
    names, cursor = [], None
    while True:
        page = list_hooks(1000, cursor, principal)
        names += [hook["name"] for hook in page]
        if len(page) < 1000:
            return names
        cursor = page[-1]["createdAt"]


# ---- chats ---------------------------------------------------------------------------------------


def create_chat(subject: str, owner_id: str | None = None) -> dict[str, Any]:
    chat_id, now = str(uuid.uuid4()), now_rfc3339_nano()
    ChatRecord(
        f"CHAT#{chat_id}",
        "META",
        gsi1sk=f"{now}#{chat_id}",
        chat_id=chat_id,
        subject=subject,
        created_at=now,
        owner_id=owner_id,
    ).save()
    return {"id": chat_id, "subject": subject, "createdAt": now}


def _chat_record(chat_id: str) -> ChatRecord:
    return get_or_404(ChatRecord, f"CHAT#{chat_id}", "META", missing=f"chat {chat_id!r} not found")


def get_chat(chat_id: str, principal: Principal | None = None, needed: str = VIEW) -> dict[str, Any]:
    record = _chat_record(chat_id)
    ownership.require(principal, needed, ownership.CHATS, chat_id, record.owner_id)
    return {"id": record.chat_id, "subject": record.subject, "createdAt": record.created_at}


def chat_owner(chat_id: str) -> str | None:
    return _chat_record(chat_id).owner_id


def list_chats(limit: int, cursor: str | None, principal: Principal | None = None) -> list[dict[str, Any]]:
    return [
        {"id": r.chat_id, "subject": r.subject, "createdAt": r.created_at}
        for r in _page_by_created(
            ChatRecord,
            "CHATS",
            limit,
            cursor,
            principal,
            ownership.CHATS,
            lambda record: (record.chat_id, record.owner_id),
        )
    ]


def chat_messages(chat_id: str) -> list[dict[str, Any]]:
    records = ChatMessageRecord.query(f"CHAT#{chat_id}", ChatMessageRecord.sk.startswith("MSG#"))
    return [{**json.loads(record.message), "sentAt": record.sent_at} for record in records]


def append_chat_messages(chat_id: str, messages: list[dict[str, Any]]) -> None:
    with _transaction() as transaction:
        transaction.condition_check(ChatRecord, f"CHAT#{chat_id}", "META", condition=ChatRecord.pk.exists())
        for number, message in enumerate(messages):
            sent_at = now_rfc3339_nano()
            clean = {key: value for key, value in message.items() if key != "sentAt"}
            transaction.save(
                ChatMessageRecord(
                    f"CHAT#{chat_id}", f"MSG#{sent_at}#{number:04d}", message=json.dumps(clean), sent_at=sent_at
                )
            )
