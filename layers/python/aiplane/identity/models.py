"""PynamoDB models of the identity store (the `identity` table), shared by every family.

Item layout (pk / sk; gsi1; gsi2; gsi3):
- user:          USER#<id> / META;              USERS, <createdAt>  (newest-first listing)
- email claim:   EMAIL#<lowercased email> / META  (one account per email, written in the user's transaction)
- access entry:  ACCESS#<id> / META;            IDENTITY#<identity>, RESOURCE#<resource>#<id>;  ACCESS, <createdAt>#<id>;
                 ACCESSBY#<identity>, <createdAt>#<id>
- access claim:  ACCESSKEY#<identity>#<type>#<resource> / META  (one entry per identity and resource)
- counter:       COUNTER#<scope> / WINDOW#<start epoch>  (rate limits and login throttling)
- session:       SESSION#<id> / META  (a login: its current token generation, revoked on logout)
- key set:       APIKEYS#<user id> / META  (hashes of the keys a user created and has not revoked: the cap)
- auth event:    AUTHCHAIN#<shard> / SEQ#<sequence>;  AUTHLOG#<user id>, <at>;  AUTHLOG#<day> (failures: AUTHFAIL#<day>), <at>#<sequence>
- auth chain head: AUTHCHAIN#<shard> / HEAD  (the events form an `aiplane.audit_chain` chain)
- gateway limit:  LIMIT#<key|user|model>#<id> / INFLIGHT (leases), MINUTE#<start epoch>, BUDGET#<period start epoch | all>
- spend log:      SPENDLOG#<request id> / META;  SPENDLOG#USER#<user id>, <at>#<id>;  SPENDLOG, <at>#<id>
API keys are `aiplane.data.models.ApiKeyRecord` in the same table.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)

from aiplane.data.models import Gsi1, Gsi2, Gsi3, IdentityItem


class UserRecord(IdentityItem):
    class Meta(IdentityItem.Meta):
        pass

    gsi1pk = UnicodeAttribute(default="USERS")
    gsi1sk = UnicodeAttribute()  # created_at, RFC3339 with microseconds
    by_creation = Gsi1()
    user_id = UnicodeAttribute()
    subject = UnicodeAttribute()
    email = UnicodeAttribute()
    friendly_name = UnicodeAttribute(null=True)
    password_hash = UnicodeAttribute()  # argon2id, never leaves the layer
    families = UnicodeSetAttribute(null=True)  # API families it may use (docs/identity.md); None: none
    # Gateway limits on everything the user calls, whatever the credential (aiplane.gateway.limits).
    max_budget = NumberAttribute(null=True)
    budget_duration = UnicodeAttribute(null=True)
    tpm_limit = NumberAttribute(null=True)
    rpm_limit = NumberAttribute(null=True)
    max_parallel_requests = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class EmailClaimRecord(IdentityItem):
    class Meta(IdentityItem.Meta):
        pass

    user_id = UnicodeAttribute()


def identity_entries_key(identity: str) -> str:
    """gsi3 of access entries: one identity's entries, oldest first."""
    return f"ACCESSBY#{identity}"


class AccessEntryRecord(IdentityItem):
    class Meta(IdentityItem.Meta):
        pass

    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_identity = Gsi1()
    gsi2pk = UnicodeAttribute(default="ACCESS")
    gsi2sk = UnicodeAttribute()
    by_creation = Gsi2()
    gsi3pk = UnicodeAttribute(null=True)  # identity_entries_key (older entries: aiplane.backfill)
    gsi3sk = UnicodeAttribute(null=True)  # as gsi2sk
    by_identity_creation = Gsi3()
    entry_id = UnicodeAttribute()
    identity = UnicodeAttribute()
    resource = UnicodeAttribute()
    resource_type = UnicodeAttribute()
    permission = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class AccessClaimRecord(IdentityItem):
    class Meta(IdentityItem.Meta):
        pass

    entry_id = UnicodeAttribute()


class CounterRecord(IdentityItem):
    class Meta(IdentityItem.Meta):
        pass

    hits = NumberAttribute(default=0, attr_name="count")  # `count` would hide Model.count()
    expires_at_epoch = NumberAttribute(null=True)


class SessionRecord(IdentityItem):
    class Meta(IdentityItem.Meta):
        pass

    user_id = UnicodeAttribute()
    generation = NumberAttribute(default=0)  # tokens of older generations were rotated away
    revoked = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    expires_at_epoch = NumberAttribute(null=True)


class OwnedKeysRecord(IdentityItem):
    class Meta(IdentityItem.Meta):
        pass

    key_hashes = UnicodeSetAttribute(null=True)


class AuthEventRecord(IdentityItem):
    class Meta(IdentityItem.Meta):
        pass

    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_user = Gsi1()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()
    by_day = Gsi2()
    sequence_num = NumberAttribute()
    prev_hash = UnicodeAttribute()
    event_hash = UnicodeAttribute()
    action = UnicodeAttribute()
    outcome = UnicodeAttribute()  # success | failure
    family = UnicodeAttribute()
    user_id = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    source_ip = UnicodeAttribute(null=True)
    credential = UnicodeAttribute(null=True)  # api_key | jwt | cookie | password | token
    key_prefix = UnicodeAttribute(null=True)  # the displayable prefix of an API key, never the key
    reason = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute()
    expires_at_epoch = NumberAttribute(null=True)


class AuthChainHeadRecord(IdentityItem):
    class Meta(IdentityItem.Meta):
        pass

    sequence_num = NumberAttribute()
    event_hash = UnicodeAttribute()
    timestamp = UnicodeAttribute()


class GatewayLimitRecord(IdentityItem):
    """One scope's (key, user or model) gateway counters: in-flight requests' leases, a minute's requests and
    tokens, or a budget period's spend and headroom (the budget left after spend and reservations)."""

    class Meta(IdentityItem.Meta):
        pass

    leases: MapAttribute[str, Any] = MapAttribute(
        null=True
    )  # INFLIGHT: request id -> the epoch second its parallel slot expires
    requests = NumberAttribute(null=True)
    tokens = NumberAttribute(null=True)
    spend = NumberAttribute(null=True)
    headroom = NumberAttribute(null=True)
    expires_at_epoch = NumberAttribute(null=True)


class SpendLogRecord(IdentityItem):
    """One request's usage and cost, written by the spend-log worker (never on the request path)."""

    class Meta(IdentityItem.Meta):
        pass

    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_user = Gsi1()
    gsi2pk = UnicodeAttribute(default="SPENDLOG")
    gsi2sk = UnicodeAttribute()
    by_time = Gsi2()
    request_id = UnicodeAttribute()
    key_id = UnicodeAttribute(null=True)
    key_hash = UnicodeAttribute(null=True)
    user_id = UnicodeAttribute()
    model = UnicodeAttribute()
    prompt_tokens = NumberAttribute(default=0)
    completion_tokens = NumberAttribute(default=0)
    spend = NumberAttribute(default=0)
    unpriced = BooleanAttribute(default=False)
    status = UnicodeAttribute()  # success | failure
    started_at = UTCDateTimeAttribute()
    ended_at = UTCDateTimeAttribute()
