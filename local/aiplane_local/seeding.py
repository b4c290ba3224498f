"""Many items at once, in the shape the product's writes leave them, for the page tests and the
page benches: batch writes instead of thousands of route calls.

Import it after the local stack is up (the models bind to the embedded AWS endpoint then)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from aiplane.clock import rfc3339
from aiplane.data.shards import SHARDS
from aiplane.events.models import RawEventRecord, TriggerRecord, trigger_function_key
from aiplane.events.raw import raw_events_key
from aiplane.files.models import ALL_NODES, FILE, FileNodeRecord, all_nodes_key, children_key, node_key
from aiplane.identity.audit import day_key
from aiplane.identity.models import AccessEntryRecord, AuthEventRecord, identity_entries_key


def file_nodes(
    parent_of: Callable[[int], str | None],
    count: int,
    *,
    name_of: Callable[[int, str], str] = lambda index, node_id: node_id,
    legacy: bool = False,
) -> list[str]:
    """`count` files under `parent_of(index)`; `legacy`: in the unsharded form the backfill moves."""
    ids = []
    with FileNodeRecord.batch_write() as batch:
        for index in range(count):
            node_id, moment, parent = str(uuid.uuid4()), rfc3339(datetime.now(UTC)), parent_of(index)
            name = name_of(index, node_id)
            batch.save(
                FileNodeRecord(
                    node_key(node_id),
                    "META",
                    gsi1pk=children_key(parent),
                    gsi1sk=name,
                    gsi2pk=ALL_NODES if legacy else all_nodes_key(node_id),
                    gsi2sk=f"{moment}#{node_id}",
                    node_id=node_id,
                    kind=FILE,
                    name=name,
                    parent_id=parent or "",
                    content_type="text/plain",
                    size=1,
                    created_at=moment,
                    updated_at=moment,
                    owner_id="admin",
                )
            )
            ids.append(node_id)
    return ids


def triggers(count: int, function_of: Callable[[int], str], trigger_type: str) -> None:
    """`count` function triggers, the one at `index` firing `function_of(index)`."""
    with TriggerRecord.batch_write() as batch:
        for index in range(count):
            name, created, target = f"t-{uuid.uuid4().hex}", rfc3339(datetime.now(UTC)), function_of(index)
            batch.save(
                TriggerRecord(
                    f"TRIGGER#{name}",
                    "META",
                    gsi1sk=f"{created}#{name}",
                    gsi2pk=f"TRIGGERTYPE#{trigger_type}",
                    gsi2sk=name,
                    gsi3pk=trigger_function_key(target),
                    gsi3sk=f"{created}#{name}",
                    name=name,
                    listen_for=f'{{"type": "{trigger_type}"}}',
                    trigger_type="function",
                    function=target,
                    created_at=created,
                    updated_at=created,
                    owner_id="admin",
                )
            )


def auth_events(count: int, outcome_of: Callable[[int], str], reason: str) -> None:
    """`count` login events on their day's index, the one at `index` with `outcome_of(index)`."""
    with AuthEventRecord.batch_write() as batch:
        for index in range(count):
            now, outcome = datetime.now(UTC), outcome_of(index)
            batch.save(
                AuthEventRecord(
                    f"SEEDAUTH#{uuid.uuid4()}",
                    "SEQ#0",
                    gsi2pk=day_key(outcome, now),
                    gsi2sk=f"{now:%Y-%m-%dT%H:%M:%S.%fZ}#{index:012d}",
                    sequence_num=0,
                    prev_hash="",
                    event_hash="",
                    action="login",
                    outcome=outcome,
                    family="runtime",
                    reason=reason,
                    at=now,
                )
            )


def access_entries(
    count: int,
    identity_of: Callable[[int], str],
    *,
    resource_of: Callable[[int], str] = lambda index: "chats",
    moment_of: Callable[[int], datetime] = lambda index: datetime.now(UTC),
) -> None:
    """`count` view grants on chats, the one at `index` for `identity_of(index)`."""
    with AccessEntryRecord.batch_write() as batch:
        for index in range(count):
            entry_id, moment, owner, resource = (
                str(uuid.uuid4()),
                moment_of(index),
                identity_of(index),
                resource_of(index),
            )
            sort = f"{rfc3339(moment)}#{entry_id}"
            batch.save(
                AccessEntryRecord(
                    f"ACCESS#{entry_id}",
                    "META",
                    gsi1pk=f"IDENTITY#{owner}",
                    gsi1sk=f"RESOURCE#{resource}#{entry_id}",
                    gsi2sk=sort,
                    gsi3pk=identity_entries_key(owner),
                    gsi3sk=sort,
                    entry_id=entry_id,
                    identity=owner,
                    resource=resource,
                    resource_type="chats",
                    permission="view",
                    created_at=moment,
                    updated_at=moment,
                )
            )


def raw_events(count: int, path: str) -> None:
    """`count` raw events spread over the shards, received now."""
    with RawEventRecord.batch_write() as batch:
        for index in range(count):
            nid, received = uuid.uuid4().int % 10**12 * SHARDS + index % SHARDS, rfc3339(datetime.now(UTC))
            batch.save(
                RawEventRecord(
                    raw_events_key(nid),
                    f"{received}#{nid:020d}",
                    gsi1pk=f"RAWEVENT#{nid}",
                    gsi1sk=received,
                    raw_id=str(uuid.uuid4()),
                    nid=nid,
                    received_at=received,
                    path=path,
                    headers="{}",
                    payload="{}",
                )
            )
