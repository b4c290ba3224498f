"""Calendar windows (UTC) for spending limits and upload counts, and money in cents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation

from aiplane.errors import ValidationError

HOURLY, DAILY, MONTHLY = "hourly", "daily", "monthly"
WINDOW_NAMES = (HOURLY, DAILY, MONTHLY)


@dataclass(frozen=True)
class Window:
    name: str
    start: datetime
    end: datetime

    @property
    def sort_key(self) -> str:
        return f"{self.name}#{self.start:%Y-%m-%dT%H}"

    @property
    def retention_epoch(self) -> int:
        """When the window's counter may go (TTL): one full period after the window closed."""
        return int((self.end + (self.end - self.start)).timestamp())


def current_window(name: str, now: datetime | None = None) -> Window:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if name == HOURLY:
        start = moment.replace(minute=0, second=0, microsecond=0)
        return Window(name, start, start + timedelta(hours=1))
    if name == DAILY:
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(name, start, start + timedelta(days=1))
    if name == MONTHLY:
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return Window(name, start, end)
    raise ValidationError(f"window must be one of {', '.join(WINDOW_NAMES)}", param="window_name")


def to_cents(amount: float | int | Decimal | None, *, param: str, allow_zero: bool = False) -> int:
    """A positive amount with at most two decimals, in cents."""
    if amount is None or isinstance(amount, bool):
        raise ValidationError(f"{param} is required", param=param)
    try:
        exact = Decimal(str(amount))
    except InvalidOperation:
        raise ValidationError(f"{param} must be a number", param=param) from None
    if not exact.is_finite() or exact < 0 or (exact == 0 and not allow_zero):
        raise ValidationError(f"{param} must be {'zero or more' if allow_zero else 'greater than zero'}", param=param)
    cents_exact = exact * 100
    if cents_exact > 100_000_000_00:  # before quantize, which cannot round a huge amount (InvalidOperation)
        raise ValidationError(f"{param} is too large", param=param)
    cents = int(cents_exact.quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    # Binary float noise (0.1 + 0.2 sent as 0.30000000000000004) is not a third decimal.
    if abs(cents_exact - cents) > Decimal("1e-6"):
        raise ValidationError(f"{param} may have at most two decimals", param=param)
    return cents


def from_cents(cents: int | float) -> float:
    return round(int(cents) / 100, 2)


def cost_cents(price_per_hour: float, hours: float) -> int:
    """What `hours` at `price_per_hour` USD cost, in cents rounded up (a hold never falls short)."""
    return int((Decimal(str(price_per_hour)) * Decimal(str(hours)) * 100).to_integral_value(rounding=ROUND_CEILING))
