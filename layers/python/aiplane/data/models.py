"""PynamoDB models. Table names come from the shared resource definitions and the settings."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from aiplane.errors import NotFoundError
from aiplane.settings import get_settings
from aiplane_shared import resources


def table_name(table: resources.Table) -> str:
    return get_settings().resource(table.name)


Record = TypeVar("Record", bound=Model)


def get_or_404(
    model: type[Record],
    hash_key: str,
    range_key: str,
    *,
    missing: str,
    param: str | None = None,
    consistent_read: bool = False,
) -> Record:
    """The item, or the 404 `missing` names (in the caller's family envelope)."""
    try:
        return model.get(hash_key, range_key, consistent_read=consistent_read)
    except DoesNotExist:
        raise NotFoundError(missing, param=param) from None


def get_or_none(model: type[Record], hash_key: str, range_key: str, *, consistent_read: bool = False) -> Record | None:
    """The item, or None when there is none."""
    try:
        return model.get(hash_key, range_key, consistent_read=consistent_read)
    except DoesNotExist:
        return None


def string_list(**options: Any) -> ListAttribute[str]:
    """A list of strings. PynamoDB types a list's items as their attribute class, not as their values."""
    return cast("ListAttribute[str]", ListAttribute(of=UnicodeAttribute, **options))


class Gsi1(GlobalSecondaryIndex):
    """The overloaded `gsi1` every table has (see aiplane_shared.resources)."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex):
    """The overloaded `gsi2` every table has. PynamoDB copies an index per model, so models share these classes."""

    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class Gsi3(GlobalSecondaryIndex):
    """The `gsi3` of the tables that declare one (aiplane_shared.resources): a third access pattern."""

    class Meta:
        index_name = "gsi3"
        projection = AllProjection()

    gsi3pk = UnicodeAttribute(hash_key=True)
    gsi3sk = UnicodeAttribute(range_key=True)


def table_meta(table: resources.Table) -> Any:
    """PynamoDB's `Meta` of a table's models: its physical name, in this deployment's region."""
    return type("Meta", (), {"table_name": table_name(table), "region": get_settings().region})


# One base per table (this one, and RuntimeItem, GpufarmItem, MlworkerItem, AppproxyItem next to
# their records): its Meta and the pk/sk every item has; a record whose sort key has a default
# redeclares `sk`. Each lives in its own module: a function's role covers the tables its imports name.
class IdentityItem(Model):
    Meta = table_meta(resources.IDENTITY_TABLE)
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="META")


class ApiKeyRecord(IdentityItem):
    """An API key, stored only as the SHA-256 of the key (the key itself is shown once); pk APIKEY#<sha256 hex>."""

    gsi1pk = UnicodeAttribute(null=True)  # OWNER#<user id>: a user's keys
    gsi1sk = UnicodeAttribute(null=True)  # created_at
    by_owner = Gsi1()
    key_id = UnicodeAttribute()
    prefix = UnicodeAttribute()  # the first characters, for display
    name = UnicodeAttribute()
    owner_id = UnicodeAttribute()
    is_admin = BooleanAttribute(default=False)
    revoked = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute(null=True)
    expires_at_epoch = NumberAttribute(null=True)  # TTL: DynamoDB removes the record after expiry
    rate_limit = NumberAttribute(null=True)  # requests per minute; None: the default limit
    scope = UnicodeAttribute(null=True)  # None: a user key; "gpu-agent": the agent routes of one GPU contract
    contract_id = UnicodeAttribute(null=True)  # the GPU contract a "gpu-agent" key was issued for
    # Virtual-key limits (LiteLLM's /key/generate; aiplane.gateway.limits). None: no limit.
    models = UnicodeSetAttribute(null=True)  # the models the key may call; None: any
    max_budget = NumberAttribute(null=True)
    budget_duration = UnicodeAttribute(null=True)  # "30d", "1h"...: the budget's reset period; None: never resets
    tpm_limit = NumberAttribute(null=True)
    rpm_limit = NumberAttribute(null=True)
    max_parallel_requests = NumberAttribute(null=True)
    key_metadata = JSONAttribute(null=True)
