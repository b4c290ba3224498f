"""PynamoDB models of gpufarm commerce, all in the gpufarm table.

Key layout (prefixes are distinct from the GPU fleet's records in the same table):
- credits      pk BILLING#<user>  sk CREDITS#<currency>
- transaction  pk BILLING#<user>  sk TXN#<created>#<id>        gsi1 TXNS[#<shard>] / <created>#<id> (admin: all)
- idempotency  pk BILLING#<user>  sk IDEMPOTENCY#<key>          TTL: a key is remembered for a day
- spend window pk SPEND#<user>    sk WINDOW#<name>#<start>      TTL: gone a period after it closes
- fleet usage  pk SPEND#<user>    sk FLEET                      GPU contracts and GPUs held (concurrency caps)
- spend hold   pk HOLD#<id>       sk META                       credits held for GPU contracts until settled
- usage        pk QUOTA#<user>    sk USAGE                      bytes of stored model artifacts
- upload count pk QUOTA#<user>    sk UPLOADS#<name>#<start>     TTL like spend windows
- model        pk MODEL#<id>      sk META                       gsi1 MODELOWNER#<user> / <created>#<id>
                                                                gsi2 MODELS[#<shard>] / <created>#<id> (admin: all)
                                                                gsi3 READYMODELS / <id> while ready (/stats)
- prediction   pk MODEL#<id>      sk PRED#<at>#<id>             TTL: a week of latency samples

Money is stored in integer cents so DynamoDB `ADD` stays exact. The everyone-partitions (TXNS,
MODELS) are sharded (`EVERYONE_SHARDS`, a random shard per write; shard 0 is the unsharded key, so
items written before sharding need no backfill): no one index partition takes every write.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.indexes import GlobalSecondaryIndex
from pynamodb.transactions import TransactWrite

from aiplane.data.conditions import ITEM_CONDITION_FAILED, TRANSACTION_CONFLICT, cancellation_codes
from aiplane.data.gpufarm_table import GpufarmItem
from aiplane.data.models import Gsi1, Gsi2, Gsi3, Record
from aiplane.data.shards import newest, shard_keys
from aiplane.settings import get_settings

META = "META"
USAGE = "USAGE"
ALL_TRANSACTIONS = "TXNS"
ALL_MODELS = "MODELS"
READY_MODELS = "READYMODELS"
EVERYONE_SHARDS = 8


def everyone_shards(partition: str) -> list[str]:
    return shard_keys(partition, EVERYONE_SHARDS, unsharded_first=True)


def everyone_shard(partition: str) -> str:
    """Where a new item of an everyone-partition goes."""
    return random.choice(everyone_shards(partition))


def newest_of_everyone(
    index: GlobalSecondaryIndex[Record], partition: str, sort_key: UnicodeAttribute, before: str | None, limit: int
) -> list[Record]:
    """A page of an everyone-partition (admin listings), newest first over its shards: the `limit`
    items whose `sort_key` is before `before` (None: the newest)."""
    newer = sort_key < before if before else None
    name = sort_key.attr_name
    return newest(
        (index.query(shard, newer, scan_index_forward=False, limit=limit) for shard in everyone_shards(partition)),
        lambda record: getattr(record, name),
        limit,
    )


def billing_key(user_id: str) -> str:
    return f"BILLING#{user_id}"


def spend_key(user_id: str) -> str:
    return f"SPEND#{user_id}"


def hold_key(hold_id: str) -> str:
    return f"HOLD#{hold_id}"


def quota_key(user_id: str) -> str:
    return f"QUOTA#{user_id}"


def model_key(model_id: str) -> str:
    return f"MODEL#{model_id}"


def model_owner_key(user_id: str) -> str:
    return f"MODELOWNER#{user_id}"


def atomic_write() -> TransactWrite:
    return TransactWrite(connection=Connection(region=get_settings().region))


def write_with_retries(write: Callable[[], None], attempts: int = 4) -> None:
    """Run a transaction, again when DynamoDB cancelled it only for a concurrent transaction on
    the same items (TransactionConflict); condition failures and other errors propagate."""
    for attempt in range(1, attempts + 1):
        try:
            write()
            return
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            if attempt == attempts or ITEM_CONDITION_FAILED in codes or TRANSACTION_CONFLICT not in codes:
                raise


class CreditBalanceRecord(GpufarmItem):
    """A user's credit balance in one currency: payments add to it."""

    class Meta(GpufarmItem.Meta):
        pass

    balance_cents = NumberAttribute(default=0)
    purchased_cents = NumberAttribute(default=0)
    updated_at = UTCDateTimeAttribute(null=True)


class TransactionRecord(GpufarmItem):
    """One payment."""

    class Meta(GpufarmItem.Meta):
        pass

    gsi1pk = UnicodeAttribute(default=ALL_TRANSACTIONS)
    gsi1sk = UnicodeAttribute()
    everyone = Gsi1()
    transaction_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    amount_cents = NumberAttribute()
    currency = UnicodeAttribute()
    status = UnicodeAttribute()
    provider = UnicodeAttribute()
    payment_type = UnicodeAttribute(null=True)
    idempotency_key = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()  # fixed-width RFC3339 (sorts as a string, doubles as cursor)


class IdempotencyRecord(GpufarmItem):
    """Claims a client's idempotency key; written in the same transaction as the payment."""

    class Meta(GpufarmItem.Meta):
        pass

    transaction_sk = UnicodeAttribute()
    fingerprint = UnicodeAttribute()  # SHA-256 of the request: a reused key must repeat the request
    expires_at_epoch = NumberAttribute()


class CounterRecord(GpufarmItem):
    """A fixed-window counter: spent cents of a spending window, or uploads of an upload window."""

    class Meta(GpufarmItem.Meta):
        pass

    value = NumberAttribute(default=0)
    expires_at_epoch = NumberAttribute(null=True)


class FleetUsageRecord(GpufarmItem):
    """GPU contracts of a user from their hold to their settlement, and their GPUs."""

    class Meta(GpufarmItem.Meta):
        pass

    instances = NumberAttribute(default=0)
    gpus = NumberAttribute(default=0)


class HoldRecord(GpufarmItem):
    """Credits and spending-window headroom held for GPU contracts, written in the same
    transaction that takes them; each contract settles its share once (`settled`)."""

    class Meta(GpufarmItem.Meta):
        pass

    sk = UnicodeAttribute(range_key=True, default=META)
    user_id = UnicodeAttribute()
    currency = UnicodeAttribute()
    shares = JSONAttribute()  # contract id -> held cents
    gpus = JSONAttribute()  # contract id -> GPUs counted against the caps (empty: not counted)
    windows: ListAttribute[Any] = ListAttribute(
        of=JSONAttribute
    )  # the spending windows the hold went into: {name, sort_key, expires}
    settled = UnicodeSetAttribute(null=True)  # contract ids whose share is settled
    created_at = UTCDateTimeAttribute()


class UsageRecord(GpufarmItem):
    """Bytes of model artifacts a user stores."""

    class Meta(GpufarmItem.Meta):
        pass

    used_bytes = NumberAttribute(default=0)


MODEL_LOADING, MODEL_READY, MODEL_FAILED = "loading", "ready", "failed"  # ModelRecord.status


class ModelRecord(GpufarmItem):
    """An uploaded model; `endpoint_url` is set once a GPU instance serves it."""

    class Meta(GpufarmItem.Meta):
        pass

    sk = UnicodeAttribute(range_key=True, default=META)
    gsi1pk = UnicodeAttribute()  # MODELOWNER#<user>
    gsi1sk = UnicodeAttribute()  # <created>#<id>
    gsi2pk = UnicodeAttribute(default=ALL_MODELS)
    gsi2sk = UnicodeAttribute()
    gsi3pk = UnicodeAttribute(null=True)  # READY_MODELS while ready (`ready_keys`)
    gsi3sk = UnicodeAttribute(null=True)
    by_owner = Gsi1()
    everyone = Gsi2()
    ready_now = Gsi3()  # the models ready now
    model_id = UnicodeAttribute()
    owner_id = UnicodeAttribute()
    name = UnicodeAttribute()
    format = UnicodeAttribute()
    framework = UnicodeAttribute()
    version = UnicodeAttribute()
    gpu_required = BooleanAttribute(default=False)
    gpu_type = UnicodeAttribute(null=True)
    status = UnicodeAttribute()  # loading | ready | failed
    artifact_key = UnicodeAttribute()
    artifact_version = UnicodeAttribute(
        null=True
    )  # the version completion pinned; reads name it (aiplane.data.presigned)
    size_bytes = NumberAttribute()
    endpoint_url = UnicodeAttribute(null=True)
    agent_instance_id = UnicodeAttribute(null=True)  # the GPU agent it is assigned to (aiplane.gpufarm.model_serving)
    failure_reason = UnicodeAttribute(null=True)  # why it failed (an agent cannot serve its format, ...)
    replicas = NumberAttribute(default=0)
    total_requests = NumberAttribute(default=0)
    error_count = NumberAttribute(default=0)
    latency_total_ms = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


PENDING_MODEL_UPLOADS = "MODELUPLOADS"


class ModelUploadRecord(GpufarmItem):
    """A presigned model upload not completed yet: the model it will create (pk of that model, sk UPLOAD)."""

    owner_id = UnicodeAttribute()
    model = UnicodeAttribute()  # the ModelRecord to write, as JSON (`to_simple_dict`)
    sha256 = UnicodeAttribute(null=True)  # the artifact's declared SHA-256 (hex), checked at completion
    expires_at_epoch = NumberAttribute()
    gsi1pk = UnicodeAttribute(default=PENDING_MODEL_UPLOADS)
    gsi1sk = UnicodeAttribute()  # presigned.expiry_sort_key: the sweep finds the abandoned ones
    by_expiry = Gsi1()


class PredictionRecord(GpufarmItem):
    """One prediction's outcome, the sample behind latency percentiles."""

    class Meta(GpufarmItem.Meta):
        pass

    latency_ms = NumberAttribute()
    succeeded = BooleanAttribute()
    expires_at_epoch = NumberAttribute()


def ready_keys(ready: bool, model_id: str) -> list[Any]:
    """The update actions that keep a model in (or out of) the ready-now index with its status."""
    if ready:
        return [ModelRecord.gsi3pk.set(READY_MODELS), ModelRecord.gsi3sk.set(model_id)]
    return [ModelRecord.gsi3pk.remove(), ModelRecord.gsi3sk.remove()]
