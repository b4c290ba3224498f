"""The one clock: the current time and the timestamp forms the stores and the contracts use.

Stored timestamps are RFC3339 UTC with a fixed six-digit fraction, so they sort as text in time
order (they serve as sort keys and cursors). Input accepts any RFC3339/RFC3339Nano form.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from aiplane.errors import ValidationError

_STORED = "%Y-%m-%dT%H:%M:%S.%fZ"
_FRACTION = re.compile(r"\.(\d+)")


def now() -> datetime:
    return datetime.now(UTC)


def monotonic() -> float:
    """Seconds on a clock that only goes forward: the in-process caches' ages (tests move it)."""
    return time.monotonic()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STORED)


def now_iso(moment: datetime | None = None) -> str:
    return rfc3339(moment or now())


def rfc3339_seconds(moment: datetime) -> str:
    """Whole seconds: the form gpufarm's contract answers with."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339_nano() -> str:
    """UTC with nanosecond digits (Python has microseconds; the last three digits are zero)."""
    return now().strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def rfc3339_nano(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def parse_rfc3339(raw: str, param: str) -> datetime:
    """A client's RFC3339/RFC3339Nano timestamp as an aware UTC datetime; a 400 naming `param` otherwise.
    Nanoseconds are cut to microseconds, a naive time is UTC, and a `+` a query string decoded
    into a space is restored."""
    text = _FRACTION.sub(lambda match: "." + match.group(1)[:6], raw.strip().replace(" ", "+"))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{param} must be an RFC3339 timestamp", param=param) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_iso(value: str) -> datetime:
    """A timestamp this system stored (trusted: no validation)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def epoch_of(iso: str) -> int:
    return int(parse_iso(iso).timestamp())
