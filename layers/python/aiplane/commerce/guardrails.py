"""Spending guardrails: hourly, daily and monthly limits per user.

Each window of each user is one counter item. Recording a spend is one DynamoDB transaction of
conditional `ADD`s (one per window, each `spent <= limit - amount`), so concurrent records can
never push any window past its limit and a refused spend changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from aiplane.commerce import views
from aiplane.commerce.records import CounterRecord, atomic_write, spend_key, write_with_retries
from aiplane.commerce.windows import DAILY, HOURLY, MONTHLY, WINDOW_NAMES, Window, current_window, from_cents
from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import get_or_none
from aiplane.errors import PaymentRequiredError, ValidationError

# Default limits in cents (the contract's examples: 100 an hour, 1000 a month).
LIMITS_CENTS = {HOURLY: 100_00, DAILY: 500_00, MONTHLY: 1000_00}
PRIMARY_WINDOW = MONTHLY  # the window `spent`/`limit`/`new_total` report


@dataclass(frozen=True)
class WindowSpend:
    window: Window
    spent_cents: int

    @property
    def limit_cents(self) -> int:
        return LIMITS_CENTS[self.window.name]


def _counter(user_id: str, window: Window) -> CounterRecord:
    return CounterRecord(spend_key(user_id), f"WINDOW#{window.sort_key}")


def _spend(user_id: str, window: Window) -> WindowSpend:
    counter = get_or_none(CounterRecord, spend_key(user_id), f"WINDOW#{window.sort_key}", consistent_read=True)
    return WindowSpend(window, int(counter.value) if counter else 0)


def spending(user_id: str, now: datetime | None = None) -> dict[str, WindowSpend]:
    moment = now or datetime.now(UTC)
    return {name: _spend(user_id, current_window(name, moment)) for name in WINDOW_NAMES}


def shown_window(window_name: str | None) -> str:
    """The window a spending answer reports: the named one, or the primary one."""
    name = window_name or PRIMARY_WINDOW
    if name not in WINDOW_NAMES:
        raise ValidationError(f"window must be one of {', '.join(WINDOW_NAMES)}", param="window")
    return name


def _violations(windows: dict[str, WindowSpend], amount_cents: int) -> list[dict[str, object]]:
    """The windows `amount_cents` more would take past their limit, with what they would reach."""
    return [
        views.violation_view(w.window.name, w.spent_cents + amount_cents, w.limit_cents)
        for w in windows.values()
        if w.spent_cents + amount_cents > w.limit_cents
    ]


def check(user_id: str, estimated_cents: int) -> dict[str, object]:
    """Whether `estimated_cents` fits every window; raises 402 SPENDING_LIMIT when it does not."""
    windows = spending(user_id)
    spent = from_cents(windows[PRIMARY_WINDOW].spent_cents)
    violations = _violations(windows, estimated_cents)
    if violations:
        raise PaymentRequiredError(
            "the estimated cost exceeds a spending limit",
            code="SPENDING_LIMIT",
            details={"allowed": False, "violations": violations, "spent": spent},
        )
    return {"allowed": True, "spent": spent, "limit": from_cents(LIMITS_CENTS[PRIMARY_WINDOW])}


def exceeds_a_whole_window(amount_cents: int) -> bool:
    """More than a window's limit: refused before writing (a missing counter passes the condition)."""
    return any(amount_cents > limit for limit in LIMITS_CENTS.values())


def add_to_windows(transaction: TransactWrite, user_id: str, amount_cents: int, windows: list[Window]) -> None:
    """Conditional `ADD`s, one per window, into `transaction`: each fails if it would pass the limit."""
    for window in windows:
        transaction.update(
            _counter(user_id, window),
            actions=[CounterRecord.value.add(amount_cents), CounterRecord.expires_at_epoch.set(window.retention_epoch)],
            condition=CounterRecord.value.does_not_exist()
            | (CounterRecord.value <= LIMITS_CENTS[window.name] - amount_cents),
        )


def remove_from_windows(
    transaction: TransactWrite, user_id: str, amount_cents: int, windows: list[dict[str, Any]]
) -> None:
    """Give back part of an earlier add, to the windows it went into (`window_refs`)."""
    for window in windows:
        counter = CounterRecord(spend_key(user_id), f"WINDOW#{window['sort_key']}")
        transaction.update(
            counter,
            actions=[CounterRecord.value.add(-amount_cents), CounterRecord.expires_at_epoch.set(window["expires"])],
        )


def window_refs(windows: list[Window]) -> list[dict[str, Any]]:
    return [{"name": w.name, "sort_key": w.sort_key, "expires": w.retention_epoch} for w in windows]


def record(user_id: str, amount_cents: int) -> int:
    """Add a spend to every window atomically; the new total of the primary window."""
    if exceeds_a_whole_window(amount_cents):
        _refuse(user_id, amount_cents)
    windows = [current_window(name) for name in WINDOW_NAMES]

    def write() -> None:
        with atomic_write() as transaction:
            add_to_windows(transaction, user_id, amount_cents, windows)

    try:
        write_with_retries(write)
    except TransactWriteError as error:
        if refused_by_condition(error):
            _refuse(user_id, amount_cents)
        raise
    return spending(user_id)[PRIMARY_WINDOW].spent_cents


def _refuse(user_id: str, amount_cents: int) -> NoReturn:
    windows = spending(user_id)
    violations = _violations(windows, amount_cents)
    raise PaymentRequiredError(
        "recording this amount would exceed a spending limit",
        code="SPENDING_LIMIT",
        details={"violations": violations, "spent": from_cents(windows[PRIMARY_WINDOW].spent_cents)},
    )


def reset(user_id: str, window_name: str) -> None:
    if window_name not in WINDOW_NAMES:
        raise ValidationError(f"window_name must be one of {', '.join(WINDOW_NAMES)}", param="window_name")
    window = current_window(window_name)
    try:
        _counter(user_id, window).update(actions=[CounterRecord.value.set(0)], condition=CounterRecord.pk.exists())
    except UpdateError as error:
        if not refused_by_condition(error):
            raise
