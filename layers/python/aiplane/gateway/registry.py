"""The gateway registry: backends, pools/groups, models, memberships and backend states.

Writes invalidate this process's routing snapshot; other processes see them once their
snapshot ages out (`SNAPSHOT_MAX_AGE_S`).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from aiplane import outbound
from aiplane.clock import epoch_of, now_iso
from aiplane.data import aws
from aiplane.data.models import table_name
from aiplane.data.pagination import timestamp_cursor
from aiplane.errors import ConflictError, ForbiddenError, NotFoundError
from aiplane.gateway import messaging
from aiplane.gateway.records import (
    BACKENDS_INDEX_KEY,
    GROUPS_INDEX_KEY,
    MODELS_INDEX_KEY,
    REGISTRY_PARTITION,
    BackendRecord,
    BackendStateRecord,
    CooldownRecord,
    GroupRecord,
    MembershipRecord,
    ModelRecord,
    NameClaimRecord,
    ProviderRecord,
    group_purpose_key,
)
from aiplane.gateway.schemas import (
    DEFAULT_ROUTING_STRATEGY,
    DEFAULT_WEIGHT,
    SUPPORTED_BACKEND_TYPES,
    BackendBody,
    GroupBody,
    ModelBody,
    ModelUpdateBody,
)
from aiplane.identity.access import MANAGE, permission_of
from aiplane.identity.principal import Principal
from aiplane.settings import get_settings
from aiplane_shared import resources

SNAPSHOT_MAX_AGE_S = 5.0
BACKEND = "BACKEND"
MODEL = "MODEL"


# ---------------------------------------------------------------- snapshot of the whole registry


@dataclass
class Registry:
    backends: dict[str, BackendRecord] = field(default_factory=dict)
    states: dict[str, BackendStateRecord] = field(default_factory=dict)
    groups: dict[str, GroupRecord] = field(default_factory=dict)
    models: dict[str, ModelRecord] = field(default_factory=dict)
    memberships: list[MembershipRecord] = field(default_factory=list)
    providers: dict[str, ProviderRecord] = field(default_factory=dict)
    cooldowns: dict[str, CooldownRecord] = field(default_factory=dict)

    def groups_of(self, kind: str, member_id: str) -> set[str]:
        return {m.group_id for m in self.memberships if m.member_kind == kind and m.member_id == member_id}

    def members_of(self, group_id: str, kind: str) -> list[str]:
        return [m.member_id for m in self.memberships if m.group_id == group_id and m.member_kind == kind]

    def declared_models_for(self, backend_id: str) -> list[ModelRecord]:
        """The models sharing at least one group with the backend (what it should serve)."""
        groups = self.groups_of(BACKEND, backend_id)
        ids = {m.member_id for m in self.memberships if m.member_kind == MODEL and m.group_id in groups}
        return [self.models[model_id] for model_id in sorted(ids) if model_id in self.models]


_RECORD_OF_PREFIX = {
    "BACKEND#": BackendRecord, "STATE#": BackendStateRecord, "GROUP#": GroupRecord,
    "MODEL#": ModelRecord, "MEMBER#": MembershipRecord, "PROVIDER#": ProviderRecord, "COOLDOWN#": CooldownRecord,
}

_snapshot_lock = threading.Lock()
_snapshot: tuple[float, Registry] | None = None


def load_registry() -> Registry:
    """The whole routing registry in one Query (more pages only past 1 MB)."""
    registry = Registry()
    paginator = aws.client("dynamodb").get_paginator("query")
    pages = paginator.paginate(
        TableName=table_name(resources.RUNTIME_TABLE),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": REGISTRY_PARTITION}},
    )
    for page in pages:
        for item in page.get("Items", []):
            sort_key = item["sk"]["S"]
            prefix = sort_key.split("#", 1)[0] + "#"
            record_class = _RECORD_OF_PREFIX.get(prefix)
            if record_class is None:
                continue
            record = record_class.from_raw_data(item)
            if isinstance(record, BackendRecord):
                registry.backends[record.id] = record
            elif isinstance(record, BackendStateRecord):
                registry.states[record.backend_id] = record
            elif isinstance(record, GroupRecord):
                registry.groups[record.id] = record
            elif isinstance(record, ModelRecord):
                registry.models[record.id] = record
            elif isinstance(record, MembershipRecord):
                registry.memberships.append(record)
            elif isinstance(record, ProviderRecord):
                registry.providers[record.type] = record
            elif isinstance(record, CooldownRecord):
                registry.cooldowns[record.backend_id] = record
    return registry


def cached_registry() -> Registry:
    """The registry as routing sees it: at most SNAPSHOT_MAX_AGE_S old, fresh after local writes."""
    global _snapshot
    with _snapshot_lock:
        if _snapshot is not None and time.monotonic() - _snapshot[0] < SNAPSHOT_MAX_AGE_S:
            return _snapshot[1]
    registry = load_registry()
    with _snapshot_lock:
        _snapshot = (time.monotonic(), registry)
    return registry


def invalidate() -> None:
    global _snapshot
    with _snapshot_lock:
        _snapshot = None


def _connection() -> Connection:
    return Connection(region=get_settings().region)


def list_page(index: Any, sort_attribute: Any, hash_key: str, limit: int, cursor: str | None) -> list[Any]:
    """One page of a list, oldest first, starting after the timestamp `cursor`."""
    after = timestamp_cursor(cursor)
    condition = sort_attribute > after if after is not None else None
    return list(index.query(hash_key, range_key_condition=condition, limit=limit, page_size=limit))


# ---------------------------------------------------------------- backends


def weight_of(record: BackendRecord) -> int:
    return DEFAULT_WEIGHT if record.weight is None else int(record.weight)


def backend_view(record: BackendRecord) -> dict[str, Any]:
    return {
        "id": record.id, "name": record.name, "baseUrl": record.base_url, "type": record.type, "weight": weight_of(record),
        "createdAt": record.created_at, "updatedAt": record.updated_at,
    }


def unsupported_type_error(backend_type: str) -> str:
    return f"backend type {backend_type!r} is not supported; supported types: {', '.join(SUPPORTED_BACKEND_TYPES)}"


def backend_summary(record: BackendRecord, state: BackendStateRecord | None) -> dict[str, Any]:
    """backendSummary/backendDetails: the configuration plus the last sync's runtime state."""
    error = state.error if state else None
    if record.type not in SUPPORTED_BACKEND_TYPES:
        error = unsupported_type_error(record.type)
    return {
        **backend_view(record),
        "models": list(state.models) if state else [],
        "pulledModels": list(state.pulled_models or []) if state else [],
        "error": error or "",
    }


def runtime_state(record: BackendRecord, state: BackendStateRecord | None) -> dict[str, Any]:
    summary = backend_summary(record, state)
    return {
        "id": record.id, "name": record.name, "backend": backend_view(record),
        "models": summary["models"], "pulledModels": summary["pulledModels"], "error": summary["error"],
    }


def get_backend(backend_id: str) -> BackendRecord:
    try:
        return BackendRecord.get(REGISTRY_PARTITION, f"BACKEND#{backend_id}")
    except BackendRecord.DoesNotExist:
        raise NotFoundError(f"backend {backend_id} not found") from None


def get_backend_state(backend_id: str) -> BackendStateRecord | None:
    try:
        return BackendStateRecord.get(REGISTRY_PARTITION, f"STATE#{backend_id}")
    except BackendStateRecord.DoesNotExist:
        return None


def _provider_key_grantor(principal: Principal, body: BackendBody, current: BackendRecord | None = None) -> str | None:
    """The principal who lets the provider key go to this backend's URL: the caller when it holds
    manage on providers; else whoever did for the current URL and type, while those stay."""
    if permission_of(principal, "providers") == MANAGE:
        return principal.id
    if current is not None and (current.base_url, current.type) == (body.base_url, body.type):
        return current.provider_key_granted_by
    return None


def create_backend(body: BackendBody, principal: Principal) -> BackendRecord:
    outbound.check_url(body.base_url, outbound.BACKENDS, param="baseUrl")
    stamp = now_iso()
    backend_id = (body.id or "").strip() or str(uuid.uuid4())
    record = BackendRecord(
        REGISTRY_PARTITION, f"BACKEND#{backend_id}", gsi1sk=stamp, id=backend_id, name=body.name,
        base_url=body.base_url, type=body.type, weight=body.weight, created_at=stamp, updated_at=stamp,
        provider_key_granted_by=_provider_key_grantor(principal, body),
    )
    try:
        record.save(condition=BackendRecord.pk.does_not_exist())
    except PutError as error:
        if _conditional_failure(error):
            raise ConflictError(f"backend {backend_id} already exists") from None
        raise
    invalidate()
    messaging.request_sync([backend_id])
    return record


def update_backend(backend_id: str, body: BackendBody, principal: Principal) -> BackendRecord:
    outbound.check_url(body.base_url, outbound.BACKENDS, param="baseUrl")
    record = get_backend(backend_id)
    grantor = _provider_key_grantor(principal, body, record)
    try:
        record.update(
            actions=[
                BackendRecord.name.set(body.name), BackendRecord.base_url.set(body.base_url),
                BackendRecord.type.set(body.type), BackendRecord.weight.set(body.weight), BackendRecord.updated_at.set(now_iso()),
                BackendRecord.provider_key_granted_by.set(grantor) if grantor else BackendRecord.provider_key_granted_by.remove(),
            ],
            condition=BackendRecord.pk.exists(),
        )
    except UpdateError as error:
        if _conditional_failure(error):
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


def list_backends(limit: int, cursor: str | None) -> list[BackendRecord]:
    return list_page(BackendRecord.by_creation, BackendRecord.gsi1sk, BACKENDS_INDEX_KEY, limit, cursor)


def write_backend_state(backend_id: str, *, error: str | None, models: list[str], pulled_models: list[dict[str, Any]]) -> None:
    BackendStateRecord(
        REGISTRY_PARTITION, f"STATE#{backend_id}", backend_id=backend_id, error=error or None,
        models=models, pulled_models=pulled_models, synced_at=now_iso(),
    ).save()
    invalidate()


# ---------------------------------------------------------------- pools / groups


def strategy_of(record: GroupRecord) -> str:
    return record.routing_strategy or DEFAULT_ROUTING_STRATEGY


def group_view(record: GroupRecord) -> dict[str, Any]:
    return {
        "id": record.id, "name": record.name, "purposeType": record.purpose_type, "routingStrategy": strategy_of(record),
        "createdAt": record.created_at, "updatedAt": record.updated_at,
    }


def get_group(group_id: str) -> GroupRecord:
    try:
        return GroupRecord.get(REGISTRY_PARTITION, f"GROUP#{group_id}")
    except GroupRecord.DoesNotExist:
        raise NotFoundError(f"group {group_id} not found") from None


def get_group_by_name(name: str) -> GroupRecord:
    try:
        claim = NameClaimRecord.get(REGISTRY_PARTITION, f"GROUPNAME#{name}")
    except NameClaimRecord.DoesNotExist:
        raise NotFoundError(f"group {name!r} not found") from None
    return get_group(claim.owner_id)


def create_group(body: GroupBody) -> GroupRecord:
    stamp = now_iso()
    group_id = (body.id or "").strip() or str(uuid.uuid4())
    record = GroupRecord(
        REGISTRY_PARTITION, f"GROUP#{group_id}", gsi1sk=stamp, gsi2pk=group_purpose_key(body.purpose_type),
        gsi2sk=stamp, id=group_id, name=body.name, purpose_type=body.purpose_type, routing_strategy=body.routing_strategy,
        created_at=stamp, updated_at=stamp,
    )
    claim = NameClaimRecord(REGISTRY_PARTITION, f"GROUPNAME#{body.name}", owner_id=group_id)
    _create_with_name_claim(record, claim, f"a group named {body.name!r} or with id {group_id} already exists")
    invalidate()
    return record


def update_group(group_id: str, body: GroupBody) -> GroupRecord:
    record = get_group(group_id)
    stamp = now_iso()
    renamed = body.name != record.name
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.update(
                record,
                actions=[
                    GroupRecord.name.set(body.name), GroupRecord.purpose_type.set(body.purpose_type),
                    GroupRecord.gsi2pk.set(group_purpose_key(body.purpose_type)), GroupRecord.updated_at.set(stamp),
                    GroupRecord.routing_strategy.set(body.routing_strategy),
                ],
                condition=GroupRecord.name == record.name,
            )
            if renamed:
                transaction.save(
                    NameClaimRecord(REGISTRY_PARTITION, f"GROUPNAME#{body.name}", owner_id=group_id),
                    condition=NameClaimRecord.pk.does_not_exist(),
                )
                transaction.delete(NameClaimRecord(REGISTRY_PARTITION, f"GROUPNAME#{record.name}"))
    except TransactWriteError:
        raise ConflictError(f"a group named {body.name!r} already exists, or the group changed meanwhile") from None
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


def list_groups(limit: int, cursor: str | None) -> list[GroupRecord]:
    return list_page(GroupRecord.by_creation, GroupRecord.gsi1sk, GROUPS_INDEX_KEY, limit, cursor)


def list_groups_by_purpose(purpose: str, limit: int, cursor: str | None) -> list[GroupRecord]:
    return list_page(GroupRecord.by_purpose, GroupRecord.gsi2sk, group_purpose_key(purpose), limit, cursor)


# ---------------------------------------------------------------- memberships


def _membership(group_id: str, kind: str, member_id: str) -> MembershipRecord:
    return MembershipRecord(
        REGISTRY_PARTITION, f"MEMBER#{group_id}#{kind}#{member_id}", group_id=group_id, member_kind=kind, member_id=member_id,
    )


def assign(group_id: str, kind: str, member_id: str) -> None:
    get_group(group_id)
    if kind == BACKEND:
        get_backend(member_id)
    else:
        get_model(member_id)
    _membership(group_id, kind, member_id).save()
    invalidate()
    registry = load_registry()
    # A new pairing can make models due on backends: reconcile the affected backends now.
    backends = [member_id] if kind == BACKEND else registry.members_of(group_id, BACKEND)
    messaging.request_sync(backends)


def unassign(group_id: str, kind: str, member_id: str) -> None:
    try:
        _membership(group_id, kind, member_id).delete(condition=MembershipRecord.pk.exists())
    except DeleteError as error:
        if _conditional_failure(error):
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


# ---------------------------------------------------------------- models


def model_view(record: ModelRecord) -> dict[str, Any]:
    return {
        "id": record.id, "model": record.model, "canChat": record.can_chat, "canEmbed": record.can_embed,
        "canPrompt": record.can_prompt, "canStream": record.can_stream, "contextLength": int(record.context_length or 0),
        "fallbacks": list(record.fallbacks or []), "contextWindowFallbacks": list(record.context_window_fallbacks or []),
        "createdAt": record.created_at, "updatedAt": record.updated_at,
    }


def openai_model(model: ModelRecord) -> dict[str, Any]:
    return {"id": model.model, "object": "model", "created": epoch_of(model.created_at), "owned_by": "aiplane"}


def openai_model_list(models: list[ModelRecord]) -> dict[str, Any]:
    """001's OpenAI list format (GET /v1/models; also what GET /openai/{chainID}/v1/models answers)."""
    return {"object": "list", "data": [openai_model(model) for model in models]}



def get_model(model_id: str) -> ModelRecord:
    try:
        return ModelRecord.get(REGISTRY_PARTITION, f"MODEL#{model_id}")
    except ModelRecord.DoesNotExist:
        raise NotFoundError(f"model {model_id} not found") from None


def find_model(id_or_name: str) -> ModelRecord:
    """By id, or by its name (the older API addressed models by name)."""
    try:
        return get_model(id_or_name)
    except NotFoundError:
        try:
            claim = NameClaimRecord.get(REGISTRY_PARTITION, f"MODELNAME#{id_or_name}")
        except NameClaimRecord.DoesNotExist:
            raise NotFoundError(f"model {id_or_name} not found") from None
        return get_model(claim.owner_id)


def create_model(body: ModelBody) -> ModelRecord:
    stamp = now_iso()
    model_id = (body.id or "").strip() or str(uuid.uuid4())
    record = ModelRecord(
        REGISTRY_PARTITION, f"MODEL#{model_id}", gsi1sk=stamp, id=model_id, model=body.model.strip(),
        can_chat=body.can_chat, can_embed=body.can_embed, can_prompt=body.can_prompt, can_stream=body.can_stream,
        context_length=body.context_length, fallbacks=body.fallbacks, context_window_fallbacks=body.context_window_fallbacks,
        created_at=stamp, updated_at=stamp,
    )
    claim = NameClaimRecord(REGISTRY_PARTITION, f"MODELNAME#{record.model}", owner_id=model_id)
    _create_with_name_claim(record, claim, f"model {record.model!r} (id {model_id}) is already declared")
    invalidate()
    return record


def update_model(model_id: str, body: ModelUpdateBody) -> ModelRecord:
    record = get_model(model_id)
    if body.model is not None and body.model.strip() != record.model:
        raise ForbiddenError("a model's name cannot change; declare a new model instead", code="immutable_model", param="model")
    actions: list[Action] = [ModelRecord.updated_at.set(now_iso())]
    changes: tuple[tuple[Any, Any], ...] = (
        (ModelRecord.can_chat, body.can_chat), (ModelRecord.can_embed, body.can_embed),
        (ModelRecord.can_prompt, body.can_prompt), (ModelRecord.can_stream, body.can_stream),
        (ModelRecord.context_length, body.context_length),
        (ModelRecord.fallbacks, body.fallbacks), (ModelRecord.context_window_fallbacks, body.context_window_fallbacks),
    )
    for attribute, value in changes:
        if value is not None:
            actions.append(attribute.set(value))
    try:
        record.update(actions=actions, condition=ModelRecord.pk.exists())
    except UpdateError as error:
        if _conditional_failure(error):
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


def list_models(limit: int, cursor: str | None) -> list[ModelRecord]:
    return list_page(ModelRecord.by_creation, ModelRecord.gsi1sk, MODELS_INDEX_KEY, limit, cursor)


def _create_with_name_claim(record: Any, claim: NameClaimRecord, conflict_message: str) -> None:
    """Write a new record and its unique-name claim in one transaction; either existing is a 409."""
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.save(record, condition=type(record).pk.does_not_exist())
            transaction.save(claim, condition=NameClaimRecord.pk.does_not_exist())
    except TransactWriteError:
        raise ConflictError(conflict_message) from None


def _conditional_failure(error: Exception) -> bool:
    cause = getattr(error, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"
