"""The gateway registry's services: create/update/delete of backends, pools/groups, models and
memberships with their rules, the backend-sync requests (SQS) they trigger, and the routing snapshot.

Writes invalidate this process's routing snapshot; other processes see them once their
snapshot ages out (`SNAPSHOT_MAX_AGE_S`) and its background refresh has loaded them. Reads of
single records are in `registry_store.py`.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from aiplane import clock, outbound_policy
from aiplane.clock import now_iso
from aiplane.data.claims import create_claimed, move_claim
from aiplane.data.conditions import refused_by_condition
from aiplane.errors import ConflictError, ForbiddenError, NotFoundError
from aiplane.gateway import messaging
from aiplane.gateway.records import (
    REGISTRY_PARTITION,
    BackendRecord,
    BackendStateRecord,
    GroupRecord,
    MembershipRecord,
    ModelRecord,
    NameClaimRecord,
    group_purpose_key,
)
from aiplane.gateway.registry_store import (
    BACKEND,
    MODEL,
    Registry,
    get_backend,
    get_group,
    get_model,
    load_registry,
    membership,
)
from aiplane.gateway.schemas import (
    BackendBody,
    GroupBody,
    ModelBody,
    ModelUpdateBody,
)
from aiplane.identity.access import MANAGE, permission_of
from aiplane.identity.principal import Principal
from aiplane.observability import logger

SNAPSHOT_MAX_AGE_S = 5.0
# Older than this (a container idle, or frozen between Lambda invocations), the snapshot is not served: loaded anew.
SNAPSHOT_STALE_LIMIT_S = 60.0

_snapshot_lock = threading.Lock()
_snapshot: tuple[float, Registry] | None = None
_generation = 0  # moved by `invalidate`: a load begun before a local write does not replace what follows it
_refreshing = False


def cached_registry() -> Registry:
    """The registry as routing sees it, fresh after local writes. Once the snapshot is SNAPSHOT_MAX_AGE_S old
    it is still served while one background thread loads the next (stale-while-revalidate, as LiteLLM's proxy
    polls its database), so requests do not wait on the load; only the first load, the one after a local
    write and one past SNAPSHOT_STALE_LIMIT_S are made on the request's thread."""
    global _refreshing
    with _snapshot_lock:
        snapshot, generation = _snapshot, _generation
        if snapshot is not None and (age := clock.monotonic() - snapshot[0]) < SNAPSHOT_STALE_LIMIT_S:
            if age >= SNAPSHOT_MAX_AGE_S and not _refreshing:
                _refreshing = True
                threading.Thread(target=_refresh, args=(generation,), name="registry-refresh", daemon=True).start()
            return snapshot[1]
    return _load(generation)


def _load(generation: int) -> Registry:
    global _snapshot
    started = clock.monotonic()
    registry = load_registry()
    with _snapshot_lock:
        if _generation == generation and (_snapshot is None or _snapshot[0] < started):
            _snapshot = (started, registry)
    return registry


def _refresh(generation: int) -> None:
    global _refreshing
    try:
        _load(generation)
    except Exception as error:  # the current snapshot stays; the next request past its age tries again
        logger.warning("routing snapshot not refreshed", extra={"error": str(error)})
    finally:
        with _snapshot_lock:
            _refreshing = False


def invalidate() -> None:
    global _snapshot, _generation
    with _snapshot_lock:
        _snapshot = None
        _generation += 1


def _provider_key_grantor(principal: Principal, body: BackendBody, current: BackendRecord | None = None) -> str | None:
    """The principal who lets the provider key go to this backend's URL: the caller when it holds
    manage on providers; else whoever did for the current URL and type, while those stay."""
    if permission_of(principal, "providers") == MANAGE:
        return principal.id
    if current is not None and (current.base_url, current.type) == (body.base_url, body.type):
        return current.provider_key_granted_by
    return None


def create_backend(body: BackendBody, principal: Principal) -> BackendRecord:
    outbound_policy.check_url(body.base_url, outbound_policy.BACKENDS, param="baseUrl")
    stamp = now_iso()
    backend_id = (body.id or "").strip() or str(uuid.uuid4())
    record = BackendRecord(
        REGISTRY_PARTITION,
        f"BACKEND#{backend_id}",
        gsi1sk=stamp,
        id=backend_id,
        name=body.name,
        base_url=body.base_url,
        type=body.type,
        weight=body.weight,
        created_at=stamp,
        updated_at=stamp,
        provider_key_granted_by=_provider_key_grantor(principal, body),
    )
    try:
        record.save(condition=BackendRecord.pk.does_not_exist())
    except PutError as error:
        if refused_by_condition(error):
            raise ConflictError(f"backend {backend_id} already exists") from None
        raise
    invalidate()
    messaging.request_sync([backend_id])
    return record


def update_backend(backend_id: str, body: BackendBody, principal: Principal) -> BackendRecord:
    outbound_policy.check_url(body.base_url, outbound_policy.BACKENDS, param="baseUrl")
    record = get_backend(backend_id)
    grantor = _provider_key_grantor(principal, body, record)
    try:
        record.update(
            actions=[
                BackendRecord.name.set(body.name),
                BackendRecord.base_url.set(body.base_url),
                BackendRecord.type.set(body.type),
                BackendRecord.weight.set(body.weight),
                BackendRecord.updated_at.set(now_iso()),
                BackendRecord.provider_key_granted_by.set(grantor)
                if grantor
                else BackendRecord.provider_key_granted_by.remove(),
            ],
            condition=BackendRecord.pk.exists(),
        )
    except UpdateError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"backend {backend_id} not found") from None
        raise
    invalidate()
    messaging.request_sync([backend_id])
    return record


def delete_backend(backend_id: str) -> None:
    get_backend(backend_id)
    registry = load_registry()
    with BackendRecord.batch_write() as batch:
        for membership in registry.memberships:
            if membership.member_kind == BACKEND and membership.member_id == backend_id:
                batch.delete(membership)
        if backend_id in registry.states:
            batch.delete(registry.states[backend_id])
        batch.delete(BackendRecord(REGISTRY_PARTITION, f"BACKEND#{backend_id}"))
    invalidate()


def write_backend_state(
    backend_id: str, *, error: str | None, models: list[str], pulled_models: list[dict[str, Any]]
) -> None:
    state = BackendStateRecord(
        REGISTRY_PARTITION,
        f"STATE#{backend_id}",
        backend_id=backend_id,
        error=error or None,
        models=models,
        pulled_models=pulled_models,
        synced_at=now_iso(),
    )
    state.save()
    _with_state(state)


def _with_state(state: BackendStateRecord) -> None:
    """Put a sync result in the snapshot as written (the item DynamoDB now holds) rather than drop it: routing sees
    it at once, and requests do not wait on a reload after every sync cycle of a worker in this process."""
    global _snapshot, _generation
    with _snapshot_lock:
        _generation += 1  # a load begun before the write may lack it
        if _snapshot is not None:
            taken, registry = _snapshot
            _snapshot = (taken, dataclasses.replace(registry, states={**registry.states, state.backend_id: state}))


def create_group(body: GroupBody) -> GroupRecord:
    stamp = now_iso()
    group_id = (body.id or "").strip() or str(uuid.uuid4())
    record = GroupRecord(
        REGISTRY_PARTITION,
        f"GROUP#{group_id}",
        gsi1sk=stamp,
        gsi2pk=group_purpose_key(body.purpose_type),
        gsi2sk=stamp,
        id=group_id,
        name=body.name,
        purpose_type=body.purpose_type,
        routing_strategy=body.routing_strategy,
        created_at=stamp,
        updated_at=stamp,
    )
    claim = NameClaimRecord(REGISTRY_PARTITION, f"GROUPNAME#{body.name}", owner_id=group_id)
    create_claimed(record, claim, f"a group named {body.name!r} or with id {group_id} already exists")
    invalidate()
    return record


def update_group(group_id: str, body: GroupBody) -> GroupRecord:
    record = get_group(group_id)
    stamp = now_iso()

    def update(transaction: TransactWrite) -> None:
        transaction.update(
            record,
            actions=[
                GroupRecord.name.set(body.name),
                GroupRecord.purpose_type.set(body.purpose_type),
                GroupRecord.gsi2pk.set(group_purpose_key(body.purpose_type)),
                GroupRecord.updated_at.set(stamp),
                GroupRecord.routing_strategy.set(body.routing_strategy),
            ],
            condition=GroupRecord.name == record.name,
        )

    refused = f"a group named {body.name!r} already exists, or the group changed meanwhile"
    old = NameClaimRecord(REGISTRY_PARTITION, f"GROUPNAME#{record.name}")
    new = NameClaimRecord(REGISTRY_PARTITION, f"GROUPNAME#{body.name}", owner_id=group_id)
    move_claim(old, new, refused, also=update)
    invalidate()
    return get_group(group_id)


def delete_group(group_id: str) -> None:
    record = get_group(group_id)
    registry = load_registry()
    with GroupRecord.batch_write() as batch:
        for membership in registry.memberships:
            if membership.group_id == group_id:
                batch.delete(membership)
        batch.delete(NameClaimRecord(REGISTRY_PARTITION, f"GROUPNAME#{record.name}"))
        batch.delete(record)
    invalidate()


def assign(group_id: str, kind: str, member_id: str) -> None:
    get_group(group_id)
    if kind == BACKEND:
        get_backend(member_id)
    else:
        get_model(member_id)
    membership(group_id, kind, member_id).save()
    invalidate()
    registry = load_registry()
    # A new pairing can make models due on backends: reconcile the affected backends now.
    backends = [member_id] if kind == BACKEND else registry.members_of(group_id, BACKEND)
    messaging.request_sync(backends)


def unassign(group_id: str, kind: str, member_id: str) -> None:
    try:
        membership(group_id, kind, member_id).delete(condition=MembershipRecord.pk.exists())
    except DeleteError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"{kind.lower()} {member_id} is not in group {group_id}") from None
        raise
    invalidate()


def groups_of_member(kind: str, member_id: str) -> list[GroupRecord]:
    if kind == BACKEND:
        get_backend(member_id)
    else:
        get_model(member_id)
    registry = load_registry()
    groups = [registry.groups[g] for g in registry.groups_of(kind, member_id) if g in registry.groups]
    return sorted(groups, key=lambda group: group.created_at)


def members_of_group(group_id: str, kind: str) -> list[Any]:
    get_group(group_id)
    registry = load_registry()
    source: dict[str, Any] = registry.backends if kind == BACKEND else registry.models
    members = [source[i] for i in registry.members_of(group_id, kind) if i in source]
    return sorted(members, key=lambda member: member.created_at)


def create_model(body: ModelBody) -> ModelRecord:
    stamp = now_iso()
    model_id = (body.id or "").strip() or str(uuid.uuid4())
    record = ModelRecord(
        REGISTRY_PARTITION,
        f"MODEL#{model_id}",
        gsi1sk=stamp,
        id=model_id,
        model=body.model.strip(),
        can_chat=body.can_chat,
        can_embed=body.can_embed,
        can_prompt=body.can_prompt,
        can_stream=body.can_stream,
        context_length=body.context_length,
        fallbacks=body.fallbacks,
        context_window_fallbacks=body.context_window_fallbacks,
        created_at=stamp,
        updated_at=stamp,
    )
    claim = NameClaimRecord(REGISTRY_PARTITION, f"MODELNAME#{record.model}", owner_id=model_id)
    create_claimed(record, claim, f"model {record.model!r} (id {model_id}) is already declared")
    invalidate()
    return record


def update_model(model_id: str, body: ModelUpdateBody) -> ModelRecord:
    record = get_model(model_id)
    if body.model is not None and body.model.strip() != record.model:
        raise ForbiddenError(
            "a model's name cannot change; declare a new model instead", code="immutable_model", param="model"
        )
    actions: list[Action] = [ModelRecord.updated_at.set(now_iso())]
    changes: tuple[tuple[Any, Any], ...] = (
        (ModelRecord.can_chat, body.can_chat),
        (ModelRecord.can_embed, body.can_embed),
        (ModelRecord.can_prompt, body.can_prompt),
        (ModelRecord.can_stream, body.can_stream),
        (ModelRecord.context_length, body.context_length),
        (ModelRecord.fallbacks, body.fallbacks),
        (ModelRecord.context_window_fallbacks, body.context_window_fallbacks),
    )
    for attribute, value in changes:
        if value is not None:
            actions.append(attribute.set(value))
    try:
        record.update(actions=actions, condition=ModelRecord.pk.exists())
    except UpdateError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"model {model_id} not found") from None
        raise
    invalidate()
    return record


def delete_model(record: ModelRecord) -> None:
    registry = load_registry()
    with ModelRecord.batch_write() as batch:
        for membership in registry.memberships:
            if membership.member_kind == MODEL and membership.member_id == record.id:
                batch.delete(membership)
        batch.delete(NameClaimRecord(REGISTRY_PARTITION, f"MODELNAME#{record.model}"))
        batch.delete(record)
    invalidate()
