"""The `from`/`to` window the events area's queries take, and its default (aiplane.clock has the forms)."""

from __future__ import annotations

from datetime import timedelta

from aiplane.clock import now, parse_rfc3339, rfc3339
from aiplane.errors import ValidationError

DEFAULT_WINDOW = timedelta(hours=24)


def window(raw_from: str | None, raw_to: str | None, *, required: bool = False) -> tuple[str, str]:
    """The stored-form bounds of a `from`/`to` query: the last 24 h unless given; `from` ≤ `to`."""
    if required:
        for value, param in ((raw_from, "from"), (raw_to, "to")):
            if not value:
                raise ValidationError(f"{param} is required", param=param)
    end = parse_rfc3339(raw_to, "to") if raw_to else now()
    start = parse_rfc3339(raw_from, "from") if raw_from else end - DEFAULT_WINDOW
    if start > end:
        raise ValidationError("from must not be after to", param="from")
    return rfc3339(start), rfc3339(end)
