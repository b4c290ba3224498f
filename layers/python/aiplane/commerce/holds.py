"""Spend holds: GPU compute is paid for before it is started.

Placing a hold is one DynamoDB transaction: the credit balance gives up the estimated cost
(conditional on covering it), every spending window takes it (conditional on its limit), the
user's fleet usage counts the contracts and their GPUs (conditional on the per-environment caps;
admins are not counted), and the hold item records what was taken. If any condition fails,
nothing is written and the caller gets the refusal (402 or 429) before anything is queued.

When a contract ends, its share of each hold settles once: the actual cost stays spent, the rest
goes back to the balance and to the windows the hold went into, and the fleet usage drops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from aiplane.commerce import billing, guardrails
from aiplane.commerce.records import (
    META,
    FleetUsageRecord,
    HoldRecord,
    atomic_write,
    hold_key,
    spend_key,
    write_with_retries,
)
from aiplane.commerce.windows import WINDOW_NAMES, current_window, from_cents
from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import get_or_none
from aiplane.errors import ConflictError, PaymentRequiredError, RateLimitedError
from aiplane.settings import current_environment

INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
FLEET = "FLEET"


@dataclass(frozen=True)
class Share:
    """One contract's part of a hold."""

    contract_id: str
    cents: int
    gpus: int


class HoldConflict(ConflictError):
    """The transaction's extra condition (`also`) failed: someone else changed the item first."""


def _fleet(user_id: str) -> FleetUsageRecord:
    return FleetUsageRecord(spend_key(user_id), FLEET)


def fleet_usage(user_id: str) -> tuple[int, int]:
    usage = get_or_none(FleetUsageRecord, spend_key(user_id), FLEET, consistent_read=True)
    return (int(usage.instances), int(usage.gpus)) if usage else (0, 0)


def place(
    user_id: str,
    hold_id: str,
    shares: list[Share],
    *,
    count_against_caps: bool,
    also: Callable[[TransactWrite], None] | None = None,
) -> None:
    """Hold the shares' cost for `user_id` in one transaction, or raise the refusal.

    `also` adds one more conditional write to the same transaction (a lease renewal's contract
    update); its condition failing raises HoldConflict."""
    total = sum(share.cents for share in shares)
    instances, gpus = len(shares), sum(share.gpus for share in shares)
    limits = current_environment().gpu_limits
    # What the conditions cannot refuse while an item is missing is refused here, in the order
    # the transaction's conditions would: credits, spending limits, caps.
    over_caps = count_against_caps and (instances > limits.max_instances_per_user or gpus > limits.max_gpus_per_user)
    over_a_window = guardrails.exceeds_a_whole_window(total)
    if over_caps or over_a_window:
        if billing.balance_cents(user_id) < total:
            _refuse_credits(user_id, total)
        if over_a_window:
            guardrails.check(user_id, total)  # raises the contract's 402 body
        _refuse_caps(user_id, instances, gpus)
    windows = [current_window(name) for name in WINDOW_NAMES]
    hold = HoldRecord(
        hold_key(hold_id),
        META,
        user_id=user_id,
        currency=billing.BILLING_CURRENCY,
        shares={share.contract_id: share.cents for share in shares},
        gpus={share.contract_id: share.gpus for share in shares} if count_against_caps else {},
        windows=guardrails.window_refs(windows),
        created_at=datetime.now(UTC),
    )

    def write() -> None:
        with atomic_write() as transaction:
            billing.take_credits(transaction, user_id, total)
            guardrails.add_to_windows(transaction, user_id, total, windows)
            if count_against_caps:
                transaction.update(
                    _fleet(user_id),
                    actions=[FleetUsageRecord.instances.add(instances), FleetUsageRecord.gpus.add(gpus)],
                    condition=FleetUsageRecord.instances.does_not_exist()
                    | (
                        (FleetUsageRecord.instances <= limits.max_instances_per_user - instances)
                        & (FleetUsageRecord.gpus <= limits.max_gpus_per_user - gpus)
                    ),
                )
            transaction.save(hold, condition=HoldRecord.pk.does_not_exist())
            if also is not None:
                also(transaction)

    try:
        write_with_retries(write)
    except TransactWriteError as error:
        if not refused_by_condition(error):
            raise
        # Which condition failed, told from the items themselves (PynamoDB sends puts before updates).
        if billing.balance_cents(user_id) < total:
            _refuse_credits(user_id, total)
        guardrails.check(user_id, total)  # raises the contract's 402 body if a window has no room
        in_use_instances, in_use_gpus = fleet_usage(user_id)
        if count_against_caps and (
            in_use_instances + instances > limits.max_instances_per_user
            or in_use_gpus + gpus > limits.max_gpus_per_user
        ):
            _refuse_caps(user_id, instances, gpus)
        raise HoldConflict(f"hold {hold_id} conflicts with a concurrent change") from error


def _refuse_credits(user_id: str, total_cents: int) -> NoReturn:
    raise PaymentRequiredError(
        "not enough credits for the estimated cost of this request",
        code=INSUFFICIENT_CREDITS,
        details={
            "allowed": False,
            "required": from_cents(total_cents),
            "balance": from_cents(billing.balance_cents(user_id)),
            "currency": billing.BILLING_CURRENCY,
        },
    )


def _refuse_caps(user_id: str, instances: int, gpus: int) -> NoReturn:
    limits = current_environment().gpu_limits
    in_use_instances, in_use_gpus = fleet_usage(user_id)
    raise RateLimitedError(
        "the request would pass your limit on concurrent GPU instances or GPUs",
        code=QUOTA_EXCEEDED,
        details={
            "instances": {"in_use": in_use_instances, "requested": instances, "limit": limits.max_instances_per_user},
            "gpus": {"in_use": in_use_gpus, "requested": gpus, "limit": limits.max_gpus_per_user},
        },
    )


def settle(hold_ids: list[str], contract_id: str, actual_cents: int) -> int:
    """Settle the contract's shares of its holds (oldest first): `actual_cents` of them stay
    spent, the rest goes back. Each share settles once; returns the cents charged now."""
    remaining, charged = actual_cents, 0
    for hold_id in hold_ids:
        hold = get_or_none(HoldRecord, hold_key(hold_id), META, consistent_read=True)
        if hold is None:
            continue  # never taken (its transaction failed): nothing to give back
        if contract_id in (hold.settled or set()):
            continue
        share = int(hold.shares.get(contract_id, 0))
        consumed = min(share, remaining)
        remaining -= consumed
        if _settle_share(hold, contract_id, share - consumed):
            charged += consumed
    return charged


def _settle_share(hold: HoldRecord, contract_id: str, give_back: int) -> bool:
    def write() -> None:
        with atomic_write() as transaction:
            transaction.update(
                hold,
                actions=[HoldRecord.settled.add({contract_id})],
                condition=HoldRecord.pk.exists() & ~HoldRecord.settled.contains(contract_id),
            )
            if give_back:
                billing.give_back_credits(transaction, hold.user_id, give_back)
                guardrails.remove_from_windows(transaction, hold.user_id, give_back, hold.windows)
            if contract_id in hold.gpus:
                transaction.update(
                    _fleet(hold.user_id),
                    actions=[
                        FleetUsageRecord.instances.add(-1),
                        FleetUsageRecord.gpus.add(-int(hold.gpus[contract_id])),
                    ],
                )

    try:
        write_with_retries(write)
    except TransactWriteError as error:
        if refused_by_condition(error):  # only the hold item has a condition
            return False  # settled concurrently
        raise
    return True
