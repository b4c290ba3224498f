"""One way to tell why DynamoDB refused a write: a single write's condition, or the items of a
cancelled transaction."""

from __future__ import annotations

from pynamodb.exceptions import TransactWriteError

CONDITION_FAILED = "ConditionalCheckFailedException"  # a single write's cause
ITEM_CONDITION_FAILED = "ConditionalCheckFailed"  # an item's reason in a cancelled transaction
TRANSACTION_CONFLICT = "TransactionConflict"
TRANSACTION_CANCELLED = "TransactionCanceledException"  # a cancelled transaction's cause


def cancellation_codes(error: TransactWriteError) -> list[str | None]:
    """Per item of a cancelled transaction, why it failed (None: it did not)."""
    return [reason.code if reason is not None else None for reason in error.cancellation_reasons or []]


def refused_by_condition(error: Exception) -> bool:
    """The write (or an item of the transaction) was refused by its condition, not by an outage."""
    if isinstance(error, TransactWriteError):
        return ITEM_CONDITION_FAILED in cancellation_codes(error)
    return getattr(error, "cause_response_code", None) == CONDITION_FAILED


def cancelled(error: TransactWriteError) -> bool:
    """An item refused the transaction (its condition, or a concurrent transaction on it), not an outage."""
    return error.cause_response_code == TRANSACTION_CANCELLED
