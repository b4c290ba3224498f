"""Unique claims: an item keyed by a value that must stay unique (an email, a name in a folder),
written in the same transaction as the record holding the value, so no two records hold it at once.

A transaction an item refuses (a claim already taken, a record that exists or changed) raises the
caller's `refused`: a ConflictError with that message, or the error a callable returns (it may look
up why, the cancellation reasons not saying which item was the cause).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from aiplane.data.conditions import cancelled
from aiplane.errors import ConflictError
from aiplane.settings import get_settings

Refusal = str | Callable[[], Exception]
Writes = Callable[[TransactWrite], None]  # the transaction's other items


def _absent(item: Model) -> Condition:
    """The item's key is not taken (every table's hash key is `pk`)."""
    return cast("Any", type(item)).pk.does_not_exist()


def _key(item: Model) -> tuple[str, str]:
    keyed = cast("Any", item)  # every table's keys are `pk` and `sk`
    return keyed.pk, keyed.sk


def _refusal(refused: Refusal) -> Exception:
    return ConflictError(refused) if isinstance(refused, str) else refused()


def _transact(writes: Writes, refused: Refusal | None) -> None:
    """Run `writes` as one transaction; refused by an item, it raises `refused` (None: the error itself)."""
    try:
        with TransactWrite(connection=Connection(region=get_settings().region)) as transaction:
            writes(transaction)
    except TransactWriteError as error:
        if refused is None or not cancelled(error):
            raise
        raise _refusal(refused) from None


def create_claimed(record: Model, claim: Model, refused: Refusal, *, also: Writes | None = None) -> None:
    """Write a new record and its claim; neither may exist yet."""

    def writes(transaction: TransactWrite) -> None:
        transaction.save(claim, condition=_absent(claim))
        transaction.save(record, condition=_absent(record))
        if also is not None:
            also(transaction)

    _transact(writes, refused)


def move_claim(
    old: Model, new: Model, refused: Refusal, *, also: Writes, old_condition: Condition | None = None
) -> None:
    """Replace a record's claim by a new one with the record's update (`also`); when both are the
    same item (the unique value did not change), only the update is written."""

    def writes(transaction: TransactWrite) -> None:
        if _key(new) != _key(old):
            transaction.save(new, condition=_absent(new))
            transaction.delete(old, condition=old_condition)
        also(transaction)

    _transact(writes, refused)


def delete_claimed(record: Model, claim: Model, refused: Refusal | None, *, condition: Condition | None = None) -> None:
    """Remove a record (on `condition`) and its claim together."""

    def writes(transaction: TransactWrite) -> None:
        transaction.delete(record, condition=condition)
        transaction.delete(claim)

    _transact(writes, refused)
