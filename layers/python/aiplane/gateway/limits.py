"""Budgets and rate limits of the LLM gateway, per API key, per user and per model, held across every
replica by one DynamoDB transaction of conditional updates at admission (no read-modify-write).

Each scope (`key#<id>`, `user#<id>`, `model#<name>`) may set LiteLLM's limits: `max_budget` with a reset
period `budget_duration`, `rpm_limit`, `tpm_limit` and `max_parallel_requests`. Its counters are items of
the identity table (`GatewayLimitRecord`):
- `INFLIGHT`: the leases of requests admitted and not yet finished (`max_parallel_requests`), a map of
  request id to the epoch second the slot expires (`gateway_lease_s`; streams renew it): the slot of a
  request whose Lambda died is taken back by the first admission refused for want of a slot;
- `MINUTE#<start>`: requests and tokens of a fixed minute (`rpm_limit`, `tpm_limit`; tokens are added when
  the request's usage is known, so `tpm_limit` admits while the minute's tokens are below it);
- `BUDGET#<period start>` (`BUDGET#all` without a reset period): `spend`, and `headroom`, the budget left
  once spend and the reservations of requests in flight are taken. A request reserves its estimated
  maximum cost (prompt estimate plus `max_tokens`) with `headroom >= cost`; the spend-log worker settles
  the real cost. So parallel requests can never together pass the budget (as far as `max_tokens` bounds them).

The same transaction re-checks that the API key is still active and its user still exists and holds the
runtime family, and that the access entry granting the route's permission still holds its level: with that,
the auth path's short caches (`aiplane.identity.verified_keys`, `aiplane.identity.access`) need no read.
"""

from __future__ import annotations

import math
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.transactions import TransactWrite

from aiplane.data.conditions import (
    ITEM_CONDITION_FAILED,
    TRANSACTION_CONFLICT,
    cancellation_codes,
    cancelled,
    refused_by_condition,
)
from aiplane.data.models import ApiKeyRecord, get_or_none
from aiplane.errors import (
    BadRequestError,
    ForbiddenError,
    InvalidCredentialsError,
    RateLimitedError,
    ValidationError,
)
from aiplane.identity import access, verified_keys
from aiplane.identity.api_keys import is_active, keys_of
from aiplane.identity.models import GatewayLimitRecord, UserRecord
from aiplane.identity.principal import BOOTSTRAP_ADMIN_ID, USER, Principal
from aiplane.identity.users import find_user
from aiplane.observability import logger
from aiplane.settings import get_settings
from aiplane_shared.families import RUNTIME

MINUTE_S = 60
CONFLICT_RETRIES = 4
CONFLICT_BACKOFF_S = 0.01
# LiteLLM's durations: 30s, 30m, 30h, 30d, 2w, 1mo (a month is 30 days here).
_DURATION = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}
LIMIT_FIELDS = ("max_budget", "budget_duration", "tpm_limit", "rpm_limit", "max_parallel_requests")


def duration_s(value: str, *, param: str) -> int:
    """Seconds of a LiteLLM duration; ValidationError when malformed."""
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if not match or int(match.group(1)) <= 0:
        raise ValidationError(f"{param} must look like 30s, 30m, 30h, 30d, 2w or 1mo", param=param)
    return int(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True)
class Limits:
    max_budget: float | None = None
    budget_duration: str | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None

    @classmethod
    def of(cls, record: Any) -> Limits:
        """The limits set on a record (key, user) or mapping (a model's setting)."""
        get = record.get if isinstance(record, dict) else lambda name: getattr(record, name, None)
        return cls(*(get(name) for name in LIMIT_FIELDS))

    @property
    def any(self) -> bool:
        return any(
            value is not None for value in (self.max_budget, self.tpm_limit, self.rpm_limit, self.max_parallel_requests)
        )


def validate_limits(values: dict[str, Any]) -> None:
    """ValidationError for a negative number or a malformed duration (nothing is written then)."""
    for name in ("max_budget", "tpm_limit", "rpm_limit", "max_parallel_requests"):
        value = values.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ValidationError(f"{name} must be a number ≥ 0", param=name)
    if values.get("budget_duration") is not None:
        duration_s(values["budget_duration"], param="budget_duration")


@cache
def _model_limits(raw: str) -> dict[str, Limits]:
    import json

    parsed = json.loads(raw)
    return {model: Limits.of(limits) for model, limits in parsed.items()}


def model_limits(model: str) -> Limits:
    """The per-model limits of the environment's `gateway_model_limits` (exact model name as requested)."""
    return _model_limits(get_settings().gateway_model_limits).get(model, Limits())


@dataclass(frozen=True)
class Scope:
    name: str  # key#<id>, user#<id>, model#<name>
    limits: Limits
    anchor: float = 0.0  # budget periods start here (the key's or user's creation)

    @property
    def pk(self) -> str:
        return f"LIMIT#{self.name}"

    def budget_sk(self, now: float) -> str:
        return f"BUDGET#{self.period_start(now)}" if self.limits.budget_duration else "BUDGET#all"

    def period_start(self, now: float) -> int:
        period = duration_s(self.limits.budget_duration or "", param="budget_duration")
        return int(self.anchor + ((now - self.anchor) // period) * period)

    def budget_reset_at(self, now: float) -> int | None:
        if not self.limits.budget_duration:
            return None
        return self.period_start(now) + duration_s(self.limits.budget_duration, param="budget_duration")


def minute_sk(now: float) -> str:
    return f"MINUTE#{int(now // MINUTE_S) * MINUTE_S}"


@dataclass
class Admission:
    """What admission took: the spend-log worker and `release` give back exactly this."""

    request_id: str
    user_id: str
    model: str
    key_id: str | None
    key_hash: str | None
    started_at: float
    scopes: list[Scope]
    minute: str
    reserved: dict[str, float] = field(default_factory=dict)  # scope name -> reserved cost, budget sk
    budget_sks: dict[str, str] = field(default_factory=dict)
    inflight: list[str] = field(default_factory=list)  # scope names holding a leased parallel slot
    lease_expires_at: int = 0
    tpm: list[str] = field(default_factory=list)  # scope names counting tokens per minute

    def scope(self, name: str) -> Scope:
        return next(scope for scope in self.scopes if scope.name == name)


def scopes_for(
    principal: Principal, model: str
) -> tuple[list[Scope], verified_keys.VerifiedKey | None, UserRecord | None]:
    """The key, user and model scopes of a request (spend is tracked for each, limited where set)."""
    key_id = principal.claims.get("keyId")
    verified = (verified_keys.by_key_id(key_id) or _verified_by_id(principal.id, key_id)) if key_id else None
    scopes: list[Scope] = []
    user: UserRecord | None = None
    if verified is not None:
        record = verified.record
        if record.models and model not in record.models:
            raise ForbiddenError(
                f"this API key may not call model {model!r}", code="key_model_access_denied", param="model"
            )
        scopes.append(Scope(f"key#{record.key_id}", Limits.of(record), record.created_at.timestamp()))
        user = verified.owner
    elif principal.kind == USER:
        user = find_user(principal.id)
    if user is not None:
        scopes.append(Scope(f"user#{user.user_id}", Limits.of(user), user.created_at.timestamp()))
    else:
        scopes.append(Scope(f"user#{principal.id}", Limits()))
    scopes.append(Scope(f"model#{model}", model_limits(model)))
    return scopes, verified, user


def _verified_by_id(owner_id: str, key_id: str) -> verified_keys.VerifiedKey | None:
    """A key this container has not verified (a chain step's actor): read by its owner's index. A key no
    longer active is refused, as at authentication."""
    record = next((key for key in keys_of(owner_id) if key.key_id == key_id), None)
    if record is None or not is_active(record):
        raise InvalidCredentialsError("the API key was revoked, expired, or its user no longer has this API")
    owner = find_user(owner_id) if not record.is_admin and owner_id != BOOTSTRAP_ADMIN_ID else None
    verified = verified_keys.VerifiedKey(key_hash=record.pk.removeprefix("APIKEY#"), record=record, owner=owner)
    verified_keys.remember(verified)
    return verified


def admit(principal: Principal, model: str, estimated_cost: float, granted: access.Granted | None = None) -> Admission:
    """Take the request's place under every limit, or raise: 429 (with Retry-After) for rpm, tpm and
    parallel requests, 400 `budget_exceeded` for a budget, 401 for a key revoked since it was cached,
    403 for a permission (`granted`, the route's check) withdrawn since. One DynamoDB call when anything
    is limited; none otherwise."""
    now = time.time()
    scopes, verified, user = scopes_for(principal, model)
    admission = Admission(
        request_id=f"chatcmpl-{uuid.uuid4().hex}",
        user_id=principal.id,
        model=model,
        key_id=verified.record.key_id if verified else None,
        key_hash=verified.key_hash if verified else None,
        started_at=now,
        scopes=scopes,
        minute=minute_sk(now),
        budget_sks={scope.name: scope.budget_sk(now) for scope in scopes},
    )
    if not any(scope.limits.any for scope in scopes):
        return admission
    reclaimed = rechecked = False
    while True:
        try:
            _take(admission, verified, user, granted, estimated_cost, now)
            break
        except _GrantChanged:
            # The entry was deleted or changed elsewhere: look the permission up (403 when it is gone) and try
            # with what grants it now; changed again under us, it is refused.
            assert granted is not None  # only the grant's check raises it
            if rechecked:
                raise access.forbidden(granted.needed, granted.resource) from None
            granted, rechecked = access.recheck(principal, granted), True
        except _NoSlot as refused:
            if reclaimed or not _reclaim_slots(admission.scopes, now):
                raise refused.error from None
            reclaimed = True  # a slot was taken back: once more
    if verified is not None:
        verified_keys.confirm(verified.key_hash)
    if granted is not None:
        access.confirm(granted)
    return admission


class _NoSlot(Exception):
    def __init__(self, error: RateLimitedError) -> None:
        self.error = error


class _GrantChanged(Exception):
    pass


def _take(
    admission: Admission,
    verified: verified_keys.VerifiedKey | None,
    user: UserRecord | None,
    granted: access.Granted | None,
    cost: float,
    now: float,
) -> None:
    kinds: list[tuple[str, Scope | None]] = []  # what each transaction item checks, for the refusal
    admission.lease_expires_at = int(now + get_settings().gateway_lease_s)

    def build(transaction: TransactWrite) -> None:  # once per attempt
        for taken in (kinds, admission.inflight, admission.tpm):
            taken.clear()
        admission.reserved.clear()
        _admission_items(transaction, admission, verified, user, granted, cost, now, kinds)

    with_transaction(build, lambda codes: _refuse(codes, kinds, admission, now, verified))


def _admission_items(
    transaction: TransactWrite,
    admission: Admission,
    verified: verified_keys.VerifiedKey | None,
    user: UserRecord | None,
    granted: access.Granted | None,
    cost: float,
    now: float,
    kinds: list[tuple[str, Scope | None]],
) -> None:
    if verified is not None:
        active = (ApiKeyRecord.revoked == False) & (  # noqa: E712 (a PynamoDB condition, not a comparison)
            ApiKeyRecord.expires_at_epoch.does_not_exist() | (ApiKeyRecord.expires_at_epoch > int(now))
        )
        transaction.condition_check(ApiKeyRecord, f"APIKEY#{verified.key_hash}", "META", condition=active)
        kinds.append(("key", None))
    if user is not None:
        transaction.condition_check(
            UserRecord,
            f"USER#{user.user_id}",
            "META",
            condition=UserRecord.pk.exists() & UserRecord.families.contains(RUNTIME),
        )
        kinds.append(("user", None))
    if granted is not None:
        access.check_in(transaction, granted)
        kinds.append(("grant", None))
    for scope in admission.scopes:
        limits = scope.limits
        if limits.max_parallel_requests is not None:
            # No map yet is a refusal too: `_reclaim_slots` creates it.
            transaction.update(
                GatewayLimitRecord(scope.pk, "INFLIGHT"),
                actions=[GatewayLimitRecord.leases[admission.request_id].set(admission.lease_expires_at)],
                condition=GatewayLimitRecord.leases.exists()
                & (size(GatewayLimitRecord.leases) < limits.max_parallel_requests),
            )
            admission.inflight.append(scope.name)
            kinds.append(("parallel", scope))
        if limits.rpm_limit is not None or limits.tpm_limit is not None:
            condition = None
            if limits.rpm_limit is not None:
                condition = GatewayLimitRecord.requests.does_not_exist() | (
                    GatewayLimitRecord.requests < limits.rpm_limit
                )
            if limits.tpm_limit is not None:
                tokens = GatewayLimitRecord.tokens.does_not_exist() | (GatewayLimitRecord.tokens < limits.tpm_limit)
                condition = tokens if condition is None else condition & tokens
                admission.tpm.append(scope.name)
            window_end = int(now // MINUTE_S) * MINUTE_S + MINUTE_S
            transaction.update(
                GatewayLimitRecord(scope.pk, admission.minute),
                actions=[
                    GatewayLimitRecord.requests.add(1),
                    GatewayLimitRecord.expires_at_epoch.set(window_end + MINUTE_S),
                ],
                condition=condition,
            )
            kinds.append(("minute", scope))
        if limits.max_budget is not None:
            if cost > limits.max_budget or limits.max_budget <= 0:
                raise _budget_exceeded(scope, now)
            budget = GatewayLimitRecord(scope.pk, admission.budget_sks[scope.name])
            transaction.update(
                budget,
                actions=[GatewayLimitRecord.headroom.set((GatewayLimitRecord.headroom | limits.max_budget) - cost)],
                condition=GatewayLimitRecord.headroom.does_not_exist()
                | ((GatewayLimitRecord.headroom >= cost) & (GatewayLimitRecord.headroom > 0)),
            )
            admission.reserved[scope.name] = cost
            kinds.append(("budget", scope))


def with_transaction(build, refuse) -> None:
    """Run one TransactWriteItems built by `build`; on a cancellation, `refuse(codes)` raises (the items'
    codes, aiplane.data.conditions.cancellation_codes). DynamoDB cancels transactions that meet on an item
    (a busy key's counters) with TransactionConflict: those are built and sent again after a jittered
    pause (moto serializes them, so only tests see the retry)."""
    for attempt in range(CONFLICT_RETRIES + 1):
        try:
            with TransactWrite(connection=Connection(region=get_settings().region)) as transaction:
                build(transaction)
            return
        except TransactWriteError as error:
            if not cancelled(error):
                raise
            codes = cancellation_codes(error)
            if TRANSACTION_CONFLICT in codes and ITEM_CONDITION_FAILED not in codes and attempt < CONFLICT_RETRIES:
                time.sleep(random.uniform(0, CONFLICT_BACKOFF_S * 2**attempt))
                continue
            refuse(codes)
            raise


def _refuse(
    codes: list[str | None],
    kinds: list[tuple[str, Scope | None]],
    admission: Admission,
    now: float,
    verified: verified_keys.VerifiedKey | None,
) -> None:
    failed = [kinds[index] for index, code in enumerate(codes) if code == ITEM_CONDITION_FAILED]
    if not failed:
        return
    kind, scope = failed[0]
    if kind in ("key", "user"):
        if verified is not None:
            verified_keys.forget(verified.key_hash)
        raise InvalidCredentialsError("the API key was revoked, expired, or its user no longer has this API")
    if kind == "grant":
        raise _GrantChanged
    assert scope is not None
    subject = scope.name.replace("#", " ", 1)
    if kind == "parallel":
        raise _NoSlot(
            _rate_limited(f"{subject} already has {scope.limits.max_parallel_requests} requests in flight", 1)
        )
    if kind == "minute":
        retry_after = max(1, math.ceil(int(now // MINUTE_S) * MINUTE_S + MINUTE_S - now))
        raise _rate_limited(
            f"{subject} used its requests or tokens per minute (rpm {scope.limits.rpm_limit}, "
            f"tpm {scope.limits.tpm_limit})",
            retry_after,
        )
    raise _budget_exceeded(scope, now)


def _rate_limited(message: str, retry_after: int) -> RateLimitedError:
    return RateLimitedError(
        message,
        code="rate_limit_exceeded",
        headers={"Retry-After": str(retry_after)},
        details={"retry_after": retry_after},
    )


def _budget_exceeded(scope: Scope, now: float) -> BadRequestError:
    reset_at = scope.budget_reset_at(now)
    message = (
        f"Budget has been exceeded: {scope.name.replace('#', ' ', 1)} has a max_budget of {scope.limits.max_budget}"
    )
    if reset_at is not None:
        message += f" (resets at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(reset_at))})"
    return BadRequestError(message, code="budget_exceeded")


def _reclaim_slots(scopes: list[Scope], now: float) -> bool:
    """After a refusal for want of a parallel slot: create a scope's lease map if it has none, and take back
    the leases that expired (their requests died without releasing them). True when a slot may be free now."""
    reclaimed = False
    for scope in scopes:
        if scope.limits.max_parallel_requests is None:
            continue
        item = GatewayLimitRecord(scope.pk, "INFLIGHT")
        current = get_or_none(GatewayLimitRecord, scope.pk, "INFLIGHT", consistent_read=True)
        leases = current.leases if current is not None else None
        if leases is None:
            item.update(actions=[GatewayLimitRecord.leases.set(GatewayLimitRecord.leases | {})])
            reclaimed = True
            continue
        expired = {request_id: expiry for request_id, expiry in leases.as_dict().items() if float(expiry) <= now}
        if not expired:
            continue
        logger.warning(
            "parallel slots taken back from requests that never released them",
            extra={"scope": scope.name, "requests": sorted(expired)},
        )
        condition = None
        for request_id, expiry in expired.items():  # not one renewed meanwhile
            unchanged = GatewayLimitRecord.leases[request_id] == expiry
            condition = unchanged if condition is None else condition & unchanged
        try:
            item.update(
                actions=[GatewayLimitRecord.leases[request_id].remove() for request_id in expired], condition=condition
            )
            reclaimed = True
        except UpdateError as error:
            if not refused_by_condition(error):
                raise
            reclaimed = True  # changed under us: worth one more try
    return reclaimed


def renew(admission: Admission, now: float) -> None:
    """Extend a long request's parallel slots (a stream renews them at half their lease)."""
    admission.lease_expires_at = int(now + get_settings().gateway_lease_s)
    for name in admission.inflight:
        lease = GatewayLimitRecord.leases[admission.request_id]
        try:
            GatewayLimitRecord(f"LIMIT#{name}", "INFLIGHT").update(
                actions=[lease.set(admission.lease_expires_at)], condition=lease.exists()
            )
        except UpdateError as error:
            if not refused_by_condition(error):
                raise
            logger.warning(
                "a parallel slot expired before its request ended",
                extra={"scope": name, "request_id": admission.request_id},
            )


def renew_due(admission: Admission, now: float) -> bool:
    return bool(admission.inflight) and now >= admission.lease_expires_at - get_settings().gateway_lease_s / 2


def release(admission: Admission) -> None:
    """Free the request's parallel slots as it ends (the rest is settled by the spend-log worker):
    the one write on the request's way out, and only when a parallel limit applies."""
    if not admission.inflight:
        return
    if len(admission.inflight) == 1:  # one write, no transaction
        GatewayLimitRecord(f"LIMIT#{admission.inflight[0]}", "INFLIGHT").update(
            actions=[GatewayLimitRecord.leases[admission.request_id].remove()]
        )
        return

    def build(transaction: TransactWrite) -> None:
        for name in admission.inflight:
            transaction.update(
                GatewayLimitRecord(f"LIMIT#{name}", "INFLIGHT"),
                actions=[GatewayLimitRecord.leases[admission.request_id].remove()],
            )

    with_transaction(build, lambda codes: None)  # a release that still fails leaves its slots to expire
