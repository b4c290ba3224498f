"""Timestamps of the events area: stored as RFC3339 UTC with microseconds (sorts as text), parsed
from any RFC3339/RFC3339Nano input, and the `from`/`to` window queries default to."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aiplane.errors import ValidationError

DEFAULT_WINDOW = timedelta(hours=24)
_FRACTION = re.compile(r"\.(\d+)")
_STORED = "%Y-%m-%dT%H:%M:%S.%fZ"


def now() -> datetime:
    return datetime.now(UTC)


def stored(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STORED)


def parse(raw: str, param: str) -> datetime:
    text = _FRACTION.sub(lambda match: "." + match.group(1)[:6], raw.strip().replace(" ", "+"))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{param} must be an RFC3339 timestamp", param=param) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def window(raw_from: str | None, raw_to: str | None, *, required: bool = False) -> tuple[str, str]:
    """The stored-form bounds of a `from`/`to` query: the last 24 h unless given; `from` ≤ `to`."""
    if required:
        for value, param in ((raw_from, "from"), (raw_to, "to")):
            if not value:
                raise ValidationError(f"{param} is required", param=param)
    end = parse(raw_to, "to") if raw_to else now()
    start = parse(raw_from, "from") if raw_from else end - DEFAULT_WINDOW
    if start > end:
        raise ValidationError("from must not be after to", param="from")
    return stored(start), stored(end)
