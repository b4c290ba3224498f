"""Timestamps and the RFC3339(Nano) cursors of the runtime lists."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiplane.errors import ValidationError

_FRACTION = re.compile(r"\.(\d+)")


def now_iso() -> str:
    """RFC3339 with microseconds in UTC; sorts as text in time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch_of(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp())


def parse_cursor(raw: str | None) -> str | None:
    """An RFC3339/RFC3339Nano `cursor` as the stored sort-key form, or None when absent."""
    if not raw:
        return None
    text = _FRACTION.sub(lambda match: "." + match.group(1)[:6], raw.strip().replace(" ", "+"))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError("cursor must be an RFC3339 timestamp", param="cursor") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
