"""Data access for the gateway registry: reading and listing its records (backends, pools/groups,
models, memberships, backend states), and the membership items the services write.

No business rules and no cache here: `registry.py` decides what to write and keeps the routing
snapshot; `views.py` shapes the records for HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiplane.data import aws
from aiplane.data.models import get_or_404, get_or_none, table_name
from aiplane.data.pagination import timestamp_cursor
from aiplane.errors import NotFoundError
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
from aiplane.gateway.schemas import DEFAULT_ROUTING_STRATEGY, DEFAULT_WEIGHT
from aiplane_shared import resources

BACKEND = "BACKEND"
MODEL = "MODEL"


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
    "BACKEND#": BackendRecord,
    "STATE#": BackendStateRecord,
    "GROUP#": GroupRecord,
    "MODEL#": ModelRecord,
    "MEMBER#": MembershipRecord,
    "PROVIDER#": ProviderRecord,
    "COOLDOWN#": CooldownRecord,
}


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


def list_page(index: Any, sort_attribute: Any, hash_key: str, limit: int, cursor: str | None) -> list[Any]:
    """One page of a list, oldest first, starting after the timestamp `cursor`."""
    after = timestamp_cursor(cursor)
    condition = sort_attribute > after if after is not None else None
    return list(index.query(hash_key, range_key_condition=condition, limit=limit, page_size=limit))


def weight_of(record: BackendRecord) -> int:
    return DEFAULT_WEIGHT if record.weight is None else int(record.weight)


def strategy_of(record: GroupRecord) -> str:
    return record.routing_strategy or DEFAULT_ROUTING_STRATEGY


def get_backend(backend_id: str) -> BackendRecord:
    return get_or_404(
        BackendRecord, REGISTRY_PARTITION, f"BACKEND#{backend_id}", missing=f"backend {backend_id} not found"
    )


def get_backend_state(backend_id: str) -> BackendStateRecord | None:
    return get_or_none(BackendStateRecord, REGISTRY_PARTITION, f"STATE#{backend_id}")


def list_backends(limit: int, cursor: str | None) -> list[BackendRecord]:
    return list_page(BackendRecord.by_creation, BackendRecord.gsi1sk, BACKENDS_INDEX_KEY, limit, cursor)


def get_group(group_id: str) -> GroupRecord:
    return get_or_404(GroupRecord, REGISTRY_PARTITION, f"GROUP#{group_id}", missing=f"group {group_id} not found")


def get_group_by_name(name: str) -> GroupRecord:
    claim = get_or_404(NameClaimRecord, REGISTRY_PARTITION, f"GROUPNAME#{name}", missing=f"group {name!r} not found")
    return get_group(claim.owner_id)


def list_groups(limit: int, cursor: str | None) -> list[GroupRecord]:
    return list_page(GroupRecord.by_creation, GroupRecord.gsi1sk, GROUPS_INDEX_KEY, limit, cursor)


def list_groups_by_purpose(purpose: str, limit: int, cursor: str | None) -> list[GroupRecord]:
    return list_page(GroupRecord.by_purpose, GroupRecord.gsi2sk, group_purpose_key(purpose), limit, cursor)


def membership(group_id: str, kind: str, member_id: str) -> MembershipRecord:
    return MembershipRecord(
        REGISTRY_PARTITION,
        f"MEMBER#{group_id}#{kind}#{member_id}",
        group_id=group_id,
        member_kind=kind,
        member_id=member_id,
    )


def get_model(model_id: str) -> ModelRecord:
    return get_or_404(ModelRecord, REGISTRY_PARTITION, f"MODEL#{model_id}", missing=f"model {model_id} not found")


def find_model(id_or_name: str) -> ModelRecord:
    """By id, or by its name (the older API addressed models by name)."""
    try:
        return get_model(id_or_name)
    except NotFoundError:
        claim = get_or_404(
            NameClaimRecord, REGISTRY_PARTITION, f"MODELNAME#{id_or_name}", missing=f"model {id_or_name} not found"
        )
        return get_model(claim.owner_id)


def list_models(limit: int, cursor: str | None) -> list[ModelRecord]:
    return list_page(ModelRecord.by_creation, ModelRecord.gsi1sk, MODELS_INDEX_KEY, limit, cursor)
