"""PynamoDB models of the gateway registry, all in the runtime table.

The routing registry (backends, groups, models, memberships, backend states, providers) lives in
one partition (`pk = GATEWAY`), so one Query loads the whole routing table. Lists with a
timestamp cursor are Queries on gsi1 (`gsi1pk = <kind>`, `gsi1sk = createdAt`). Download jobs have
their own partition.
"""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute

from aiplane.data.models import Gsi1, Gsi2, string_list
from aiplane.data.runtime_table import RuntimeItem

REGISTRY_PARTITION = "GATEWAY"
DOWNLOADS_PARTITION = "GATEWAY#DOWNLOADS"
FAILURES_PARTITION = "GATEWAY#FAILURES"

BACKENDS_INDEX_KEY = "GATEWAY#BACKENDS"
GROUPS_INDEX_KEY = "GATEWAY#GROUPS"
MODELS_INDEX_KEY = "GATEWAY#MODELS"
PROVIDERS_INDEX_KEY = "GATEWAY#PROVIDERS"


def group_purpose_key(purpose: str) -> str:
    return f"GATEWAY#PURPOSE#{purpose}"


class BackendRecord(RuntimeItem):
    """sk = BACKEND#<id>."""

    gsi1pk = UnicodeAttribute(default=BACKENDS_INDEX_KEY)
    gsi1sk = UnicodeAttribute()  # createdAt
    by_creation = Gsi1()
    id = UnicodeAttribute()
    name = UnicodeAttribute()
    base_url = UnicodeAttribute()
    type = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    # Who, holding manage on providers, set this URL: only then does the provider key go to a
    # base URL other than the provider's official API host (see gateway/providers.py).
    provider_key_granted_by = UnicodeAttribute(null=True)
    weight = NumberAttribute(null=True)  # absent on records older than weights: DEFAULT_WEIGHT


class BackendStateRecord(RuntimeItem):
    """sk = STATE#<backend id>: what the last sync found (written by the sync worker only)."""

    backend_id = UnicodeAttribute()
    error = UnicodeAttribute(null=True)
    models = string_list(default=list)
    pulled_models = JSONAttribute(default=list)
    synced_at = UnicodeAttribute()


class GroupRecord(RuntimeItem):
    """sk = GROUP#<id>. A pool (001) and an affinity group (003) are this one record."""

    gsi1pk = UnicodeAttribute(default=GROUPS_INDEX_KEY)
    gsi1sk = UnicodeAttribute()  # createdAt
    gsi2pk = UnicodeAttribute()  # GATEWAY#PURPOSE#<purposeType>
    gsi2sk = UnicodeAttribute()  # createdAt
    by_creation = Gsi1()
    by_purpose = Gsi2()
    id = UnicodeAttribute()
    name = UnicodeAttribute()
    purpose_type = UnicodeAttribute(default="")
    routing_strategy = UnicodeAttribute(null=True)  # absent on older records: DEFAULT_ROUTING_STRATEGY
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class NameClaimRecord(RuntimeItem):
    """sk = GROUPNAME#<name> or MODELNAME#<name>: makes names unique (conditional put in a transaction)."""

    owner_id = UnicodeAttribute()


class ModelRecord(RuntimeItem):
    """sk = MODEL#<id>: a declared model with its capabilities."""

    gsi1pk = UnicodeAttribute(default=MODELS_INDEX_KEY)
    gsi1sk = UnicodeAttribute()  # createdAt
    by_creation = Gsi1()
    id = UnicodeAttribute()
    model = UnicodeAttribute()
    can_chat = BooleanAttribute(default=False)
    can_embed = BooleanAttribute(default=False)
    can_prompt = BooleanAttribute(default=False)
    can_stream = BooleanAttribute(default=False)
    context_length = NumberAttribute(default=0)
    fallbacks = string_list(null=True)
    context_window_fallbacks = string_list(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class MembershipRecord(RuntimeItem):
    """sk = MEMBER#<group id>#BACKEND#<id> or MEMBER#<group id>#MODEL#<id>."""

    group_id = UnicodeAttribute()
    member_kind = UnicodeAttribute()  # BACKEND | MODEL
    member_id = UnicodeAttribute()


class ProviderRecord(RuntimeItem):
    """sk = PROVIDER#<type>. The key itself is in Secrets Manager; this keeps only its last characters."""

    gsi1pk = UnicodeAttribute(default=PROVIDERS_INDEX_KEY)
    gsi1sk = UnicodeAttribute()  # createdAt
    by_creation = Gsi1()
    type = UnicodeAttribute()
    secret_name = UnicodeAttribute()
    key_suffix = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class CooldownRecord(RuntimeItem):
    """sk = COOLDOWN#<backend id>: the backend is skipped by every container until `until` (epoch seconds).
    It lives in the registry partition, so the routing snapshot's one Query reads it; the TTL removes it later."""

    backend_id = UnicodeAttribute()
    until = NumberAttribute()
    reason = UnicodeAttribute(null=True)
    expires_at_epoch = NumberAttribute()


class FailureCountRecord(RuntimeItem):
    """pk = GATEWAY#FAILURES, sk = <backend id>#<window number>: failures counted by every container
    in one fixed window (an atomic ADD), so `allowed_fails` holds across containers."""

    fails = NumberAttribute(default=0)
    expires_at_epoch = NumberAttribute()


class DownloadJobRecord(RuntimeItem):
    """pk = GATEWAY#DOWNLOADS, sk = JOB#<id>: a model pull onto one ollama backend, with its progress."""

    id = UnicodeAttribute()
    model = UnicodeAttribute()
    url = UnicodeAttribute()
    backend_id = UnicodeAttribute()
    status = UnicodeAttribute()  # queued | running | done | failed | cancelled
    scheduled_for = NumberAttribute()
    valid_until = NumberAttribute()
    created_at = UnicodeAttribute()
    progress_status = UnicodeAttribute(null=True)
    digest = UnicodeAttribute(null=True)
    total = NumberAttribute(null=True)
    completed = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    expires_at_epoch = NumberAttribute(null=True)
    heartbeat_at = NumberAttribute(null=True)  # epoch seconds of the running worker's last sign of life
    attempts = NumberAttribute(null=True)  # times a worker took the job (a slice each)
    failures = NumberAttribute(null=True)  # of those, the ones killed or broken mid-pull
