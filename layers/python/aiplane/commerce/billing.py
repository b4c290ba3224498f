"""Credits and payments.

A payment is recorded and credited in one DynamoDB transaction: the transaction item, the
balance `ADD` and, when the client sent an idempotency key, the key's claim (conditional on the
key being new or expired). A retried request with the same key and body gets the first
transaction back; the same key with another body is a conflict. A conditional write (rather than
Powertools idempotency) keeps the claim and the credit in one atomic step.

No card network is contacted: the payment provider integration belongs between validation and
the write; until then every valid payment succeeds and tops up the balance.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from aiplane.clock import rfc3339
from aiplane.commerce.records import (
    ALL_TRANSACTIONS,
    CreditBalanceRecord,
    IdempotencyRecord,
    TransactionRecord,
    atomic_write,
    billing_key,
    everyone_shard,
    newest_of_everyone,
    write_with_retries,
)
from aiplane.commerce.windows import from_cents, to_cents
from aiplane.data.conditions import ITEM_CONDITION_FAILED, cancellation_codes
from aiplane.data.models import get_or_none
from aiplane.data.pagination import timestamp_cursor
from aiplane.errors import ConflictError, ForbiddenError, ValidationError
from aiplane.identity.principal import Principal

CURRENCIES = ("USD",)
BILLING_CURRENCY = CURRENCIES[0]  # what GPU spend is held and charged in
PROVIDERS = ("stripe", "paypal", "crypto", "invoice")
SUCCEEDED = "succeeded"
IDEMPOTENCY_TTL_S = 24 * 3600
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True)
class Payment:
    amount_cents: int
    currency: str
    provider: str
    payment_type: str | None


def validate_payment(amount: Any, currency: str | None, provider: str | None, payment_type: str | None) -> Payment:
    cents = to_cents(amount, param="amount")
    code = (currency or "USD").strip().upper()
    if code not in CURRENCIES:
        raise ValidationError(f"currency must be one of {', '.join(CURRENCIES)}", param="currency")
    name = (provider or "stripe").strip().lower()
    if name not in PROVIDERS:
        raise ValidationError(f"provider must be one of {', '.join(PROVIDERS)}", param="provider")
    return Payment(cents, code, name, (payment_type or "").strip() or None)


def payment_account(principal: Principal, user_id: str | None) -> str:
    """The account a payment credits. No payment processor is integrated, so nothing could charge
    a card: a payment is an operator's record of money received (an invoice paid), and only an
    admin records one, for any account. A self-credited user would launch GPUs on the operator's bill."""
    if not principal.is_admin:
        raise ForbiddenError(
            "payments are recorded by an administrator: this deployment has no payment processor to charge a card"
        )
    return user_id or principal.id


def create_payment(user_id: str, payment: Payment, idempotency_key: str | None) -> TransactionRecord:
    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"Idempotency-Key may have at most {MAX_IDEMPOTENCY_KEY} characters", param="Idempotency-Key"
        )
    now = datetime.now(UTC)
    created = rfc3339(now)
    transaction_id = f"txn_{uuid.uuid4().hex}"
    record = TransactionRecord(
        billing_key(user_id),
        f"TXN#{created}#{transaction_id}",
        gsi1pk=everyone_shard(ALL_TRANSACTIONS),
        gsi1sk=f"{created}#{transaction_id}",
        transaction_id=transaction_id,
        user_id=user_id,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        status=SUCCEEDED,
        provider=payment.provider,
        payment_type=payment.payment_type,
        idempotency_key=key,
        created_at=created,
    )
    fingerprint = hashlib.sha256(json.dumps(payment.__dict__, sort_keys=True).encode()).hexdigest()
    balance = CreditBalanceRecord(billing_key(user_id), f"CREDITS#{payment.currency}")

    def write() -> None:
        with atomic_write() as transaction:
            if key is not None:
                claim = IdempotencyRecord(
                    billing_key(user_id),
                    f"IDEMPOTENCY#{key}",
                    transaction_sk=record.sk,
                    fingerprint=fingerprint,
                    expires_at_epoch=int(now.timestamp()) + IDEMPOTENCY_TTL_S,
                )
                transaction.save(
                    claim,
                    condition=IdempotencyRecord.pk.does_not_exist()
                    | (IdempotencyRecord.expires_at_epoch < int(now.timestamp())),
                )
            transaction.save(record, condition=TransactionRecord.pk.does_not_exist())
            transaction.update(
                balance,
                actions=[
                    CreditBalanceRecord.balance_cents.add(payment.amount_cents),
                    CreditBalanceRecord.purchased_cents.add(payment.amount_cents),
                    CreditBalanceRecord.updated_at.set(now),
                ],
            )

    try:
        write_with_retries(write)
    except TransactWriteError as error:
        # The claim is the first item: its condition failing means the key was used already.
        if key is None or cancellation_codes(error)[:1] != [ITEM_CONDITION_FAILED]:
            raise
        return _replay(user_id, key, fingerprint)
    return record


def _replay(user_id: str, key: str, fingerprint: str) -> TransactionRecord:
    claim = IdempotencyRecord.get(billing_key(user_id), f"IDEMPOTENCY#{key}", consistent_read=True)
    if claim.fingerprint != fingerprint:
        raise ConflictError(
            "Idempotency-Key was already used for a different payment",
            code="IDEMPOTENCY_CONFLICT",
            param="Idempotency-Key",
        )
    return TransactionRecord.get(billing_key(user_id), claim.transaction_sk, consistent_read=True)


def list_transactions(user_id: str | None, limit: int, cursor: str | None) -> list[TransactionRecord]:
    """Newest first; `user_id` None lists everyone's (admin). The cursor is the `created_at` of
    the last transaction of the previous page."""
    before = timestamp_cursor(cursor)
    if user_id is None:
        return newest_of_everyone(TransactionRecord.everyone, ALL_TRANSACTIONS, TransactionRecord.gsi1sk, before, limit)
    condition: Condition = (
        TransactionRecord.sk.between("TXN#", f"TXN#{before}") if before else TransactionRecord.sk.startswith("TXN#")
    )
    return list(TransactionRecord.query(billing_key(user_id), condition, scan_index_forward=False, limit=limit))


def credits_of(user_id: str) -> list[dict[str, Any]]:
    records = CreditBalanceRecord.query(billing_key(user_id), CreditBalanceRecord.sk.startswith("CREDITS#"))
    return [
        {
            "currency": record.sk.removeprefix("CREDITS#"),
            "balance": from_cents(record.balance_cents),
            "purchased": from_cents(record.purchased_cents),
            "updated_at": rfc3339(record.updated_at) if record.updated_at else None,
        }
        for record in records
    ]


def _balance(user_id: str) -> CreditBalanceRecord:
    return CreditBalanceRecord(billing_key(user_id), f"CREDITS#{BILLING_CURRENCY}")


def balance_cents(user_id: str) -> int:
    balance = get_or_none(
        CreditBalanceRecord, billing_key(user_id), f"CREDITS#{BILLING_CURRENCY}", consistent_read=True
    )
    return int(balance.balance_cents) if balance else 0


def take_credits(transaction: TransactWrite, user_id: str, cents: int) -> None:
    """Deduct `cents` in `transaction`, which fails unless the balance covers them."""
    transaction.update(
        _balance(user_id),
        actions=[CreditBalanceRecord.balance_cents.add(-cents), CreditBalanceRecord.updated_at.set(datetime.now(UTC))],
        condition=CreditBalanceRecord.balance_cents >= cents,
    )


def give_back_credits(transaction: TransactWrite, user_id: str, cents: int) -> None:
    transaction.update(
        _balance(user_id),
        actions=[CreditBalanceRecord.balance_cents.add(cents), CreditBalanceRecord.updated_at.set(datetime.now(UTC))],
    )
